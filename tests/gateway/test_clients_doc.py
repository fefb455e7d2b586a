"""docs/clients.md's table of clients names tests that exist, one for each client the gateway promises."""

from __future__ import annotations

import re

from support.paths import ROOT

GUIDE = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")


def _rows() -> list[list[str]]:
    table = GUIDE.split("### Clients tested against the gateway", 1)[1].split("```", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split(" | ")]
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| framework") and "---" not in line
    ]


def test_each_row_names_a_test_that_exists():
    rows = _rows()
    assert len(rows) >= 8
    for row in rows:
        test = re.fullmatch(r"`(tests/[\w/]+\.py)(?:::(\w+)(?:\[\w+\])?)?`", row[-1])
        assert test, row
        source = (ROOT / test[1]).read_text(encoding="utf-8")
        assert test[2] is None or f"def {test[2]}(" in source, row


def test_the_issues_clients_are_listed():
    classes = " ".join(row[1] for row in _rows())
    for name in (
        "cohere.ClientV2",
        "langchain_cohere.CohereRerank",
        "CohereRerank",
        "JinaRerank",
        "TextEmbeddingInference",
        "JinaRanker",
        "HttpReranker",
    ):
        assert name in classes, name
