"""`crossrank bench`'s settings: where the random-weight models of architecture names come from and go.

Read once when `crossrank bench` starts (flag, else CROSSRANK_BENCH_*, else the default) and passed down;
../shared/gpu/run-bench.sh sets CROSSRANK_BENCH_TOKENIZER on a GPU machine, which has no hub access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crossrank.common.settings import Settings, setting

HUB_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class BenchSettings(Settings):
    bench_tokenizer: str = setting(
        "",
        "Tokenizer for an architecture name (--model minilm-l6, tiny, bge-reranker-v2-m3); empty = "
        "../shared/models/all-MiniLM-L6-v2 when present, else the hub's sentence-transformers/all-MiniLM-L6-v2.",
        flag="--tokenizer",
    )
    bench_cache: str = setting(
        "~/.cache/crossrank/bench",
        "Folder of the random-weight models built for architecture names, one per name; made on first use.",
        flag="--cache",
    )

    def tokenizer(self) -> str:
        """The BERT WordPiece tokenizer to save beside a built model: the one set, the shared MiniLM copy,
        or the hub id. Any WordPiece tokenizer does: a model's speed depends on lengths, not on ids."""
        if self.bench_tokenizer:
            return self.bench_tokenizer
        for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
            local = base.parent / "shared" / "models" / "all-MiniLM-L6-v2"
            if local.is_dir():
                return str(local)
        return HUB_TOKENIZER

    def cache(self) -> Path:
        return Path(self.bench_cache).expanduser()
