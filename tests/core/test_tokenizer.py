"""Query capping, truncation and windows, on the tiny model's real tokenizer."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossrank.worker.engine.tokenizer import PairTokenizer, pad
from crossrank.worker.engine.types import LongDocument
from crossrank.worker.errors import InvalidInputError


@pytest.fixture(scope="module")
def pair_tokenizer(tiny_cross_encoder):
    from transformers import AutoTokenizer

    return PairTokenizer(AutoTokenizer.from_pretrained(tiny_cross_encoder), max_length=64, max_query_share=0.25)


def _tokens(pair_tokenizer, text):
    return len(pair_tokenizer.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_long_query_is_capped_to_its_share(pair_tokenizer):
    query = "what is retrieval " * 40
    capped = pair_tokenizer.cap_query(query)
    assert query.startswith(capped)
    assert _tokens(pair_tokenizer, capped) == pair_tokenizer.max_query_tokens
    assert pair_tokenizer.cap_query("short query") == "short query"


def test_truncation_keeps_every_pair_within_the_model_limit(pair_tokenizer):
    docs = ["stock market " * 200, "短文", "向量数据库" * 100]
    encoded = pair_tokenizer.encode("what is rag " * 30, docs)
    assert encoded.sources.tolist() == [0, 1, 2]
    assert encoded.lengths.max() <= 64
    # The document keeps most of the room: the query cannot crowd it out.
    assert encoded.lengths[0] == 64


def test_error_mode_names_the_long_documents(pair_tokenizer):
    with pytest.raises(InvalidInputError, match=r"indexes 1\b"):
        pair_tokenizer.encode("query", ["short", "long " * 100], LongDocument.ERROR)
    assert len(pair_tokenizer.encode("query", ["short"], LongDocument.ERROR)) == 1


def test_windows_overlap_and_cover_the_document(pair_tokenizer):
    document = " ".join(f"w{i}" for i in range(120))
    pieces = pair_tokenizer.windows("query", document, window=20, stride=10)
    assert len(pieces) > 1
    assert pieces[0].startswith("w0 ") and pieces[-1].endswith("w119")
    for a, b in zip(pieces, pieces[1:], strict=False):
        assert set(a.split()) & set(b.split()), "consecutive windows must overlap"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("abc 的是了RAG？ ")), min_size=0, max_size=400),
       window=st.integers(8, 40), stride=st.integers(1, 40))
def test_windows_fit_and_cover_any_text(pair_tokenizer, text, window, stride):
    stride = min(stride, window)
    pieces = pair_tokenizer.windows("q", text, window, stride)
    assert pieces
    assert all(_tokens(pair_tokenizer, p) <= window + 1 for p in pieces)  # +1: re-tokenizing a cut may split a char
    if text.strip():
        assert text.rstrip().endswith(pieces[-1].rstrip()[-1:])
    assert pair_tokenizer.encode("q", [text], LongDocument.WINDOW, window, stride).lengths.max() <= 64


def test_padded_batches_equal_the_tokenizers_own(pair_tokenizer):
    # What the model sees must be what transformers would give it, token for token.
    docs = ["stock market " * 80, "向量数据库", "short", "a b c d e f"]
    tokens = pair_tokenizer.encode("what is rag", docs)
    batch = pad([(tokens, np.arange(len(docs)))], pair_tokenizer.pad_id)
    expected = pair_tokenizer.tokenizer(["what is rag"] * len(docs), docs, truncation="only_second", max_length=64,
                                 padding=True, return_tensors="np")
    assert set(batch) == set(expected)
    for key, value in batch.items():
        assert (value == expected[key]).all(), key


@pytest.mark.parametrize("left", [False, True])
def test_padding_several_requests_picks_each_ones_inputs(pair_tokenizer, left):
    # A batch takes some inputs of each of several requests, in any order: row by row, what the
    # tokenizer itself pads for those pairs, on either side.
    rag = pair_tokenizer.encode("what is rag", ["stock market " * 80, "向量数据库", "short"])
    capital = pair_tokenizer.encode("capital", ["a b c", "北京是首都 " * 9])
    parts = [(rag, np.array([2, 0])), (capital, np.array([1]))]
    batch = pad(parts, pair_tokenizer.pad_id, left=left)
    pairs = [("what is rag", "short"), ("what is rag", "stock market " * 80), ("capital", "北京是首都 " * 9)]
    pair_tokenizer.tokenizer.padding_side = "left" if left else "right"
    try:
        expected = pair_tokenizer.tokenizer([q for q, _ in pairs], [d for _, d in pairs], truncation="only_second",
                                     max_length=64, padding=True, return_tensors="np")
    finally:
        pair_tokenizer.tokenizer.padding_side = "right"
    for key, value in batch.items():
        assert (value == expected[key]).all(), key


def test_concurrent_encoding_never_exceeds_the_limit(pair_tokenizer):
    # A fast tokenizer keeps its truncation setting as shared state; unguarded, a thread measuring
    # untruncated spans could switch truncation off under a thread encoding pairs.
    from concurrent.futures import ThreadPoolExecutor

    docs = ["stock market " * 80, "向量数据库" * 60, "short"]

    def work(k: int) -> int:
        longest = 0
        for _ in range(30):
            mode = LongDocument.WINDOW if k % 2 else LongDocument.TRUNCATE
            longest = max(longest, int(pair_tokenizer.encode("query " * (k % 5 + 1), docs, mode, 20, 10).lengths.max()))
        return longest

    with ThreadPoolExecutor(16) as pool:
        assert max(pool.map(work, range(16))) <= 64

