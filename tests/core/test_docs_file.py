"""`crossrank rerank --docs-file`: each result's `index` is the document's line number - 1."""

import json
import subprocess

from support.workers import crossrank_command

QUERY = "什么是RAG技术？"


def _rerank(address: str, docs_file, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(crossrank_command("rerank", "--target", address, QUERY, "--docs-file", str(docs_file),
                                            *extra), capture_output=True, text=True, timeout=120)


def test_a_blank_line_inside_the_file_is_refused_with_its_line_number(worker, tmp_path):
    docs = tmp_path / "candidates.txt"
    docs.write_text("RAG是检索增强生成技术\n\n北京是中国的首都\n", encoding="utf-8")
    result = _rerank(f"127.0.0.1:{worker.port}", docs)
    assert result.returncode == 2, result.stdout
    assert f"{docs}:2 is blank" in result.stderr
    assert "Traceback" not in result.stderr


def test_index_matches_line_numbers_and_trailing_blank_lines_are_fine(worker, tmp_path):
    lines = ["RAG是检索增强生成技术", "向量数据库存储向量", "北京是中国的首都"]
    docs = tmp_path / "candidates.txt"
    docs.write_text("\n".join(lines) + "\n\n\n", encoding="utf-8")
    result = _rerank(f"127.0.0.1:{worker.port}", docs, "--json")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert sorted(r["index"] for r in results) == [0, 1, 2]
    for r in results:
        assert r["document"] == lines[r["index"]]
