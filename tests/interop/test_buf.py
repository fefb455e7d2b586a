"""The wire contract, checked by buf with buf.yaml: lint passes, and nothing a client in another
language depends on has changed since main's previous commit (or since this branch left main).

The baseline is read from git (`git archive`), so a fresh clone with history is all it needs; a
shallow clone without that commit skips and says how to fetch it. The other tests show that the
check has teeth: a renumbered or retyped field fails, an added field and a new package version pass.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
from support.dev_tools import dev_tool
from support.paths import ROOT

PROTO = Path("crossrank/v1/reranker.proto")


def buf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([dev_tool("buf"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def baseline_commit() -> str:
    """Where this tree's contract came from: the commit this branch left main at, or on main itself
    (or with no main branch) the previous commit."""
    if shutil.which("git") is None or git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout: buf breaking compares the protos with an earlier commit")
    head = git("rev-parse", "HEAD").stdout.strip()
    main = next((b for b in ("main", "origin/main") if git("rev-parse", "--verify", "--quiet", b).returncode == 0),
                None)
    fork = git("merge-base", "HEAD", main).stdout.strip() if main else ""
    if fork and fork != head:
        return fork
    previous = git("rev-parse", "--verify", "--quiet", "HEAD~1^{commit}")
    if previous.returncode != 0:
        shallow = git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
        pytest.skip("a shallow clone has no previous commit to compare the protos with: git fetch --unshallow"
                    if shallow else "the first commit has no earlier contract to compare with")
    return previous.stdout.strip()


def protos_at(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "protos"], cwd=ROOT, capture_output=True,
                             timeout=60, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "protos"


@pytest.fixture
def edited(tmp_path) -> Path:
    """A copy of the repository's buf.yaml and protos to change; buf runs on it against the original."""
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos", tmp_path / "protos", ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))
    return tmp_path


def edit(root: Path, old: str, new: str, proto: Path = PROTO) -> None:
    path = root / "protos" / proto
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {proto} exactly once"
    path.write_text(text.replace(old, new))


def breaking(root: Path) -> subprocess.CompletedProcess:
    return buf("breaking", "protos", "--against", str(ROOT / "protos"), cwd=root)


def test_buf_lint_passes():
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_still_checks_the_rules_v1_is_excused_from(edited):
    """The exceptions in buf.yaml name v1's file, not the rules: a new file must follow them."""
    v2 = edited / "protos" / "crossrank" / "v2"
    shutil.copytree(edited / "protos" / "crossrank" / "v1", v2)
    edit(edited, "package crossrank.v1;", "package crossrank.v2;", Path("crossrank/v2/reranker.proto"))
    result = buf("lint", cwd=edited)
    assert result.returncode != 0
    assert 'crossrank/v2/reranker.proto:13:9:Service name "Reranker" should be suffixed with "Service"' in result.stdout
    assert "crossrank/v1/" not in result.stdout, result.stdout


def test_no_breaking_change_since_main(tmp_path):
    commit = baseline_commit()
    result = buf("breaking", "protos", "--against", str(protos_at(commit, tmp_path)))
    assert result.returncode == 0, f"the contract changed incompatibly since {commit[:12]}:\n{result.stdout}"


@pytest.mark.parametrize(("old", "new", "finding"), [
    ("string query = 2;", "string query = 12;", 'Previously present field "2" with name "query"'),
    ("uint32 top_k = 4;", "int64 top_k = 4;", 'changed type from "uint32" to "int64"'),
    ("  string document = 3;\n}", "}", 'Previously present field "3" with name "document"'),
    ("rpc Score(ScoreRequest) returns (ScoreResponse);", "", 'Previously present RPC "Score"'),
], ids=["renumbered", "retyped", "deleted", "rpc-removed"])
def test_buf_breaking_fails_on_a_breaking_change(edited, old, new, finding):
    edit(edited, old, new)
    result = breaking(edited)
    assert result.returncode != 0, "buf breaking let a breaking change through"
    assert finding in result.stdout, result.stdout


def test_an_added_field_is_not_breaking(edited):
    edit(edited, "message InfoRequest {}", "message InfoRequest {\n  bool verbose = 1;\n}")
    result = breaking(edited)
    assert result.returncode == 0, result.stdout


def test_a_new_package_version_may_change_anything(edited):
    """Breaking changes go to crossrank.v2 beside v1, which existing clients keep calling."""
    shutil.copytree(edited / "protos" / "crossrank" / "v1", edited / "protos" / "crossrank" / "v2")
    v2 = Path("crossrank/v2/reranker.proto")
    edit(edited, "package crossrank.v1;", "package crossrank.v2;", v2)
    edit(edited, "string query = 2;", "string query = 12;", v2)
    result = breaking(edited)
    assert result.returncode == 0, result.stdout


def test_the_docs_buf_commands_run_as_written():
    guide = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    commands = [line for block in re.findall(r"```bash\n(.*?)```", guide, flags=re.S)
                for line in block.splitlines() if line.startswith(".venv/bin/buf ")]
    assert len(commands) == 2, commands
    if git("rev-parse", "--verify", "--quiet", "main").returncode != 0:
        pytest.skip("no local main branch for `--against '.git#branch=main'` (a detached or single-branch clone)")
    for command in commands:
        words = shlex.split(command)
        result = buf(*words[1:])
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
