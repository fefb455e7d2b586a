"""Splitting long documents into overlapping passages that keep the document's id."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.pipeline.passages import split_passages


def test_a_short_document_is_one_passage():
    passages = split_passages("doc-1", "  Paris is the capital of France.  ", size=1000, overlap=200)
    assert len(passages) == 1
    assert (passages[0].id, passages[0].doc_id, passages[0].number, passages[0].text) == (
        "doc-1#0", "doc-1", 0, "Paris is the capital of France.")


def test_chinese_without_spaces_is_cut_by_characters_with_the_overlap():
    text = "".join(chr(0x4E00 + i) for i in range(450))  # 450 distinct CJK characters, no breaks
    passages = split_passages("zh", text, size=100, overlap=20)
    assert [p.id for p in passages] == [f"zh#{n}" for n in range(len(passages))]
    assert all(len(p.text) == 100 for p in passages[:-1])
    for a, b in zip(passages, passages[1:], strict=False):
        assert a.text[-20:] == b.text[:20]  # consecutive passages share exactly the overlap
    assert passages[0].text == text[:100] and text.endswith(passages[-1].text)
    assert len(passages) == 6  # starts 0, 80, 160, 240, 320; the last ends the text at 450


def test_english_passages_end_on_whole_words():
    words = [f"word{i:03d}" for i in range(200)]
    text = " ".join(words)
    passages = split_passages("en", text, size=120, overlap=30)
    assert len(passages) > 5
    for p in passages:
        assert len(p.text) <= 120
    for p in passages[:-1]:
        assert p.text.split()[-1] in words  # the window's end moved back to a space
    assert passages[-1].text.endswith("word199")


def test_ids_and_passages_are_deterministic():
    text = "检索增强生成（RAG）是一种技术。" * 40
    first = split_passages("d", text, size=64, overlap=16)
    assert first == split_passages("d", text, size=64, overlap=16)
    assert [p.number for p in first] == list(range(len(first)))


def test_a_window_of_whitespace_only_is_no_passage():
    text = "alpha" + " " * 40 + "\n" * 40 + "omega"
    passages = split_passages("gap", text, size=10, overlap=2)
    assert [p.text for p in passages] == ["alpha", "omega"]
    assert [p.id for p in passages] == ["gap#0", "gap#1"]
    assert split_passages("blank", "   \n  ", size=10, overlap=0) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_windows_are_refused(size, overlap):
    with pytest.raises(ValueError):
        split_passages("d", "text", size=size, overlap=overlap)


# Distinct "letters" make every position findable; separators (which may repeat) give break points.
_alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 400)] + [chr(c) for c in range(0x100, 0x180)]
_letters = st.lists(st.sampled_from(_alphabet), unique=True, min_size=1, max_size=300)
_separators = st.lists(st.sampled_from(["", "", "", " ", "\n", "。", ", ", ". ", "  ", " " * 7, "\n\n\n\n"]),
                       min_size=300, max_size=300)


@settings(max_examples=200, deadline=None)
@given(letters=_letters, separators=_separators, size=st.integers(1, 80), overlap_share=st.floats(0, 0.9))
def test_passages_cover_the_whole_text(letters, separators, size, overlap_share):
    text = "".join(letter + sep for letter, sep in zip(letters, separators, strict=False))
    overlap = min(int(size * overlap_share), size - 1)
    passages = split_passages("doc", text, size=size, overlap=overlap)
    assert [p.id for p in passages] == [f"doc#{n}" for n in range(len(passages))]
    assert all(0 < len(p.text) <= size and p.text in text for p in passages)
    # Every letter is in some passage, and passages follow the text's order.
    covered = "".join(p.text for p in passages)
    assert set(letters) <= set(covered)
    firsts = [text.index(next(c for c in p.text if c in set(letters))) for p in passages
              if any(c in set(letters) for c in p.text)]
    assert firsts == sorted(firsts)
    assert text.strip().startswith(passages[0].text) and text.strip().endswith(passages[-1].text)


def test_overlapping_passages_start_at_a_word_boundary():
    words = [f"word{i:03d}" for i in range(400)]
    text = " ".join(words)
    passages = split_passages("d", text, 200, 50)
    assert len(passages) > 5
    for p in passages:
        assert p.text.split()[0] in words and p.text.split()[-1] in words  # no cut words at either end
