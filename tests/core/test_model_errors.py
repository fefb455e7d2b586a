"""A model that cannot be loaded is one line: what was tried, why it failed, what to set; at once."""

import os
import subprocess

import pytest
from support.workers import crossrank_command

from crossrank.common.net import free_port
from crossrank.worker.model_source import ModelSourceError, check_model_source

SETTING = "CROSSRANK_MODEL (--model)"


def _serve(model: str, tmp_path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    """`crossrank serve` with a fresh, empty Hugging Face cache, so nothing is found there by chance."""
    environment = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), **env}
    return subprocess.run(crossrank_command("serve", "--host", "127.0.0.1", "--port", "0", "--model", model,
                                            "--embed-model", "none", "--device", "cpu", *extra),
                          capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path)


def _one_clear_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "Error" in line or "ERROR" in line]
    assert len(errors) == 1, result.stderr  # said once, not once per retry or per layer
    return errors[0]


def test_a_missing_local_path_says_so_and_what_to_set(tmp_path):
    line = _one_clear_line(_serve("../models/not-there", tmp_path, HF_HUB_OFFLINE="1"))
    assert "model path ../models/not-there does not exist" in line
    assert "set CROSSRANK_MODEL" in line and "alphanumeric" not in line


def test_an_unreachable_hub_fails_fast_with_the_id_and_what_to_set(tmp_path):
    hub = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    line = _one_clear_line(_serve("BAAI/bge-reranker-v2-m3", tmp_path, HF_HUB_OFFLINE="0", HF_ENDPOINT=hub))
    assert f"cannot reach {hub} to download BAAI/bge-reranker-v2-m3" in line
    assert "set CROSSRANK_MODEL (--model) to a local copy's folder" in line


@pytest.mark.parametrize(("name", "said"), [
    ("not a valid id!", "is neither an existing folder nor a Hugging Face id"),
    ("/nowhere/model", "model path /nowhere/model does not exist"),
])
def test_bad_names_say_what_was_tried(name, said):
    with pytest.raises(ModelSourceError, match=said):
        check_model_source(name, SETTING)


def test_a_folder_without_a_saved_model_is_named(tmp_path):
    with pytest.raises(ModelSourceError, match="holds no saved model"):
        check_model_source(str(tmp_path), SETTING)


def test_an_uncached_id_while_offline_says_to_use_a_folder(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelSourceError, match="not in the local cache while HF_HUB_OFFLINE is set"):
        check_model_source("someone/never-downloaded-model", SETTING)


def test_a_saved_model_passes(tiny_cross_encoder):
    check_model_source(str(tiny_cross_encoder), SETTING)


def test_verbose_adds_the_traceback(tmp_path):
    result = _serve("../models/not-there", tmp_path, "--verbose", HF_HUB_OFFLINE="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ModelSourceError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("Error: could not load the model: model path")


def test_a_model_without_one_score_per_pair_is_refused_at_start(tmp_path):
    from support.tiny_models import build_cross_encoder

    classifier = build_cross_encoder(tmp_path / "three-labels", num_labels=3)
    line = _one_clear_line(_serve(str(classifier), tmp_path, HF_HUB_OFFLINE="1"))
    assert "BertForSequenceClassification" in line and "shape (2, 3)" in line
    assert "not one score per pair" in line
