"""Pipeline settings from CROSSRANK_* variables, and the rerank depths of the four profiles."""

import pytest

from crossrank.pipeline import PROFILES, PipelineSettings
from crossrank.pipeline.api import depths
from crossrank.pipeline.settings import SettingsError


def test_defaults_work_on_one_machine():
    s = PipelineSettings.from_env({})
    assert (s.redis_url, s.chroma_url, s.chroma_path, s.worker_target) == (
        "redis://localhost:6379/0", "", "./data/chroma", "localhost:50051")
    assert s.client_kwargs() == {"target": "localhost:50051", "token": None, "ca_cert": None, "timeout": 120.0}


def test_variables_then_overrides():
    env = {"CROSSRANK_REDIS_URL": "redis://cache:6379/3", "CROSSRANK_CHROMA_URL": "http://chroma:8000",
           "CROSSRANK_WORKER_TARGET": "w1:50051,w2:50051", "CROSSRANK_INDEX_CHUNK_SIZE": "16",
           "CROSSRANK_TIMEOUT": "2.5", "CROSSRANK_AUTH_TOKEN": "t0k"}
    s = PipelineSettings.from_env(env, worker_target="dns:///workers:50051", chroma_path=None)
    assert s.redis_url == "redis://cache:6379/3" and s.chroma_url == "http://chroma:8000"
    assert s.index_chunk_size == 16 and s.timeout == 2.5
    assert s.worker_target == "dns:///workers:50051"  # a flag wins over the variable
    assert s.chroma_path == "./data/chroma"  # None means "not given"
    assert s.client_kwargs()["token"] == "t0k"


@pytest.mark.parametrize(("variable", "value"), [
    ("CROSSRANK_REDIS_URL", "http://localhost:6379"),
    ("CROSSRANK_REDIS_URL", "localhost:6379"),
    ("CROSSRANK_CHROMA_URL", "chroma:8000"),
    ("CROSSRANK_INDEX_CHUNK_SIZE", "many"),
    ("CROSSRANK_INDEX_CHUNK_SIZE", "0"),
    ("CROSSRANK_RERANK_CHUNK_SIZE", "-1"),
    ("CROSSRANK_EMBED_BATCH_SIZE", "0"),
    ("CROSSRANK_PASSAGE_OVERLAP", "1000"),
    ("CROSSRANK_TIMEOUT", "soon"),
    ("CROSSRANK_TASK_RETRIES", "-1"),
])
def test_a_bad_value_is_an_error_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        PipelineSettings.from_env({variable: value})


def test_the_four_profiles_of_the_original_write_up():
    assert PROFILES == {"realtime": (50, 5), "document": (100, 10), "preview": (20, 3), "deep": (200, 20)}
    assert depths(None, None, None) == (50, 5)
    for name, expected in PROFILES.items():
        assert depths(name, None, None) == expected


def test_explicit_depths_override_the_profile():
    assert depths("deep", None, 7) == (200, 7)
    assert depths("preview", 40, None) == (40, 3)
    assert depths(None, 10, 3) == (10, 3)
    assert depths("document", 30, 30) == (30, 30)


def test_top_k_above_initial_k_and_unknown_profiles_are_refused():
    with pytest.raises(ValueError, match="top_k"):
        depths(None, 10, 11)
    with pytest.raises(ValueError, match="top_k"):
        depths("preview", None, 21)
    with pytest.raises(ValueError, match="unknown profile"):
        depths("fast", None, None)

