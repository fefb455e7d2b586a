"""Arrows point down: the light SDK pulls no torch, the worker never imports client or pipeline, and the
pipeline imports of the worker only its settings (`crossrank up` starts workers with them).

Everyone may import `crossrank.common` (settings model, networking, logging) and `crossrank.protos` (the
contract); those two import nothing of ours beyond themselves, and pull no torch."""

import ast
import subprocess
import sys

from support.paths import ROOT


def _imports(folder: str) -> set[str]:
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def _ours(folder: str) -> set[str]:
    return {m for m in _imports(folder) if m.startswith("crossrank.")}


def _only_ours(folder: str, *allowed: str) -> None:
    ours = _ours(folder)
    assert "crossrank.common.settings" in ours  # guards the check: it reads the folder's imports
    assert not {m for m in ours if not m.startswith((f"crossrank.{folder}", *allowed))}, ours


def _pulls_nothing_heavy(modules: str, heavy: tuple[str, ...] = ("torch", "transformers", "sentence_transformers",
                                                                  "celery", "chromadb")) -> None:
    """Importing `modules` (comma-separated) in a fresh interpreter loads none of `heavy`."""
    code = f"import sys, {modules}; heavy = {set(heavy)!r} & set(sys.modules); assert not heavy, heavy"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_common_imports_nothing_of_ours():
    assert _ours("common") == set()


def test_protos_import_only_themselves():
    assert {m for m in _ours("protos") if not m.startswith("crossrank.protos")} == set()


def test_common_and_protos_pull_no_torch():
    _pulls_nothing_heavy("crossrank.common.settings, crossrank.common.net, crossrank.common.logs, crossrank.protos")


def test_worker_imports_only_common_and_protos_of_ours():
    _only_ours("worker", "crossrank.common", "crossrank.protos")


def test_pipeline_imports_of_the_worker_only_its_settings():
    ours = {m for m in _imports("pipeline") if m.startswith("crossrank.worker")}
    assert ours <= {"crossrank.worker.settings"}, ours
    _pulls_nothing_heavy("crossrank.pipeline.up_cli", ("torch", "transformers", "sentence_transformers"))


def test_client_imports_only_common_and_protos_of_ours():
    _only_ours("client", "crossrank.common", "crossrank.protos")


def test_client_does_not_pull_torch():
    _pulls_nothing_heavy("crossrank.client, crossrank.client.cli")


def test_public_api_is_exported():
    import crossrank.client as client

    for name in client.__all__:
        assert hasattr(client, name), name
    assert {"CrossrankClient", "AsyncCrossrankClient", "CrossrankError"} <= set(client.__all__)
