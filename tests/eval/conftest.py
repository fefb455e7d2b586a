"""Fixtures of the eval tests: a small hand-made BEIR folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.evaluation import write_beir


@pytest.fixture
def beir(tmp_path) -> Path:
    return write_beir(tmp_path / "tiny-beir")
