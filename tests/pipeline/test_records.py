"""A result record is written and read through one type: every field survives a trip through real Chroma."""

import dataclasses

from crossrank.pipeline import PipelineSettings
from crossrank.pipeline.records import ResultRecord, ResultRecords
from crossrank.pipeline.search import Hit, SearchResult
from crossrank.pipeline.store import open_chroma, open_collection, upsert

# The metadata keys a rerank job's records carry (the design's results collection).
DESIGN_KEYS = {"job_id", "query_id", "query", "doc_id", "rank", "score", "initial_rank", "model"}


def _result() -> SearchResult:
    """Two hits whose every field differs from the other's and from every other field's value."""
    hits = [Hit(rank=1, initial_rank=7, score=0.8731, passage_id="doc-b#2", doc_id="doc-b", text="北京是中国的首都",
                embedding=[0.0, 1.0, 0.0]),
            Hit(rank=2, initial_rank=3, score=0.25, passage_id="doc-a#0", doc_id="doc-a", text="paris, france",
                embedding=[1.0, 0.0, 0.0])]
    return SearchResult(query="什么是首都？", hits=hits, model="tiny-cross-encoder", pairs=9)


def test_the_record_maps_every_field_but_its_text_to_a_metadata_key():
    record = ResultRecord.from_hit("job-1", "q-7", _result(), _result().hits[0])
    names = {f.name for f in dataclasses.fields(ResultRecord)}
    assert set(record.to_chroma()) == names - {"text"}
    assert set(record.to_chroma()) >= DESIGN_KEYS
    assert record.id == "job-1:q-7:1"


def test_records_written_by_a_chunk_read_back_equal(tmp_path):
    result = _result()
    records = ResultRecords()
    records.add("job-1", "q-7", result)
    expected = [ResultRecord.from_hit("job-1", "q-7", result, hit) for hit in result.hits]
    assert records.ids == ["job-1:q-7:1", "job-1:q-7:2"]

    chroma = open_chroma(PipelineSettings(chroma_path=str(tmp_path / "chroma")))
    collection = open_collection(chroma, "docs-results", create=True)
    upsert(collection, chroma, records.ids, records.embeddings, records.texts, records.metadatas)
    found = collection.get(ids=records.ids, include=["documents", "metadatas", "embeddings"])

    read = {id_: ResultRecord.from_chroma(metadata, text)
            for id_, metadata, text in zip(found["ids"], found["metadatas"], found["documents"], strict=True)}
    assert [read[record.id] for record in expected] == expected
    for record in expected:  # each field, by name, so a failure names the field that did not survive
        for f in dataclasses.fields(ResultRecord):
            assert getattr(read[record.id], f.name) == getattr(record, f.name), f.name
        assert read[record.id].id == record.id
    by_id = dict(zip(found["ids"], found["embeddings"], strict=True))
    assert [list(by_id[record.id]) for record in expected] == [hit.embedding for hit in result.hits]
