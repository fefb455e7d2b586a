"""Secrets stay out of what is printed, and collection names follow Chroma's own rules."""

from __future__ import annotations

import stat
import subprocess

import chromadb
import pytest
from chromadb.config import Settings
from support.pipeline import base_env
from support.workers import crossrank_command

from crossrank.pipeline.masking import mask_url, write_env_file
from crossrank.pipeline.settings import PipelineSettings, SettingsError
from crossrank.pipeline.store import check_collection_name

NAMES = ["abc", "a..b", "a.b", "a-b_c.d", "ab", "a" * 512, "a" * 513, "192.168.1.1", "1.2.3.4.5", "-ab", "ab-",
         "has space", "名字名字"]


@pytest.mark.parametrize("url, shown", [
    ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
    ("rediss://user:s3cret@[::1]:6380/2", "rediss://user:***@[::1]:6380/2"),
    ("http://admin:p%40ss@chroma:8000", "http://admin:***@chroma:8000"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("redis://user@localhost/0", "redis://user@localhost/0"),
])
def test_passwords_in_urls_are_masked(url, shown):
    assert mask_url(url) == shown


def test_a_bad_url_with_a_password_is_refused_without_it():
    with pytest.raises(SettingsError) as caught:
        PipelineSettings.from_env({"CROSSRANK_REDIS_URL": "http://user:s3cret@redis:6379/0"})
    assert "s3cret" not in str(caught.value) and "http://user:***@redis:6379/0" in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        PipelineSettings.from_env({"CROSSRANK_CHROMA_URL": "chroma://user:s3cret@chroma"})
    assert "s3cret" not in str(caught.value)


def test_the_cli_prints_no_password_of_a_bad_redis_url():
    env = base_env(CROSSRANK_REDIS_URL="http://user:s3cret@redis:6379/0")
    result = subprocess.run(crossrank_command("jobs", "list"), capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert "s3cret" not in result.stdout + result.stderr
    assert "CROSSRANK_REDIS_URL" in result.stderr


def test_the_env_file_of_up_is_the_owners_alone(tmp_path):
    path = write_env_file(tmp_path / "crossrank.env", {"CROSSRANK_REDIS_URL": "redis://:s3 cret@h:1/0",
                                                       "CROSSRANK_CHROMA_URL": ""})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "export CROSSRANK_REDIS_URL='redis://:s3 cret@h:1/0'\n"


def test_collection_names_pass_our_check_exactly_when_chroma_takes_them(tmp_path):
    chroma = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False))
    for name in NAMES:
        try:
            chroma.get_or_create_collection(name, embedding_function=None)
            chroma_takes = True
        except Exception:  # noqa: BLE001 (Chroma raises several types for a bad name)
            chroma_takes = False
        try:
            check_collection_name(name)
            we_take = True
        except ValueError as exc:
            assert "bad collection name" in str(exc)
            we_take = False
        assert we_take == chroma_takes, name
