"""Fixtures of the eval tests: a small hand-made BEIR folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))

from eval_support import write_beir  # noqa: E402


@pytest.fixture
def beir(tmp_path) -> Path:
    return write_beir(tmp_path / "tiny-beir")
