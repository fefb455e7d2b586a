"""What the pipeline prints fits 80 columns: free text is cut (by cells, so Chinese is cut right),
ids, counts, dates and elapsed time never are; the words are the ones `crossrank rerank` uses."""

import re
import subprocess
import time

from rich.cells import cell_len
from rich.console import Console
from support.workers import crossrank_command

from crossrank.pipeline.jobs import JobStatus
from crossrank.pipeline.render import jobs_table, progress_bar, ranked_table, show_progress

CJK = "[\u4e00-\u9fff，。：？]"
LONG_ZH = ("一个典型的RAG系统分为两个阶段：先用向量检索召回候选段落，"
           "再用交叉编码器对候选重新排序，把最相关的段落送入大模型。")


def _job(**overrides) -> JobStatus:
    now = time.time()
    values = dict(id="0123456789abcdef", kind="rerank", state="cancelled",
                  collection="a-very-long-collection-name-for-a-narrow-terminal-results", total=12345, done=678,
                  chunks=3, chunks_done=1, counts={"pairs": 5000}, errors=[], error_count=2, created_at=now - 90,
                  started_at=now - 90, finished_at=None)
    return JobStatus(**{**values, **overrides})


def _render(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, force_terminal=False)
    console.print(renderable)
    lines = console.export_text().splitlines()
    assert all(cell_len(line) <= width for line in lines), lines
    return lines


def test_the_progress_bar_keeps_counts_and_elapsed_time_at_80_columns():
    bar = progress_bar(Console(width=80))
    task = bar.add_task("job", total=None, rate="")
    show_progress(bar, task, _job(state="running"))
    (line,) = _render(bar.make_tasks_table(bar.tasks))
    assert line.startswith("rerank running")
    assert " 678/12345 " in line
    assert re.search(r" \d+:\d\d:\d\d$", line), line  # elapsed, whole, at the end


def test_jobs_list_cuts_only_the_collection():
    jobs = [_job(), _job(id="fedcba9876543210", kind="index", state="done", collection="文档集合" * 4,
                         total=5, done=5, error_count=0)]
    header, first, second = _render(jobs_table(jobs))
    assert header.split() == ["job", "kind", "state", "collection", "progress", "errors", "created"]
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(jobs[0].created_at))
    assert first.startswith("0123456789abcdef rerank cancelled a-very-") and "…" in first
    assert first.endswith(f" 678/12345      2 {created}")
    assert second.startswith("fedcba9876543210 index  done      文档集合") and second.endswith(f" 5/5      0 {created}")
    assert not re.search(f"{CJK} +…", second)  # cut right after a whole character, no gap


def test_ranked_documents_in_chinese_wrap_without_gaps():
    rows = [(1, 3, 0.9123, "rag-pipeline-zh#0", LONG_ZH * 3),
            (2, 1, 0.5, "vectordb-zh", "向量数据库用于存储和检索高维向量。")]
    lines = _render(ranked_table("q-rag-zh: 什么是RAG技术？", rows))
    cells = [line.split("│")[-2].strip() for line in lines if line.count("│") > 2]
    text = "".join(cells)
    assert LONG_ZH + LONG_ZH[:10] in text  # the document reads on from line to line, nothing lost or added inside
    assert all(not re.search(f"{CJK} +{CJK}", cell) for cell in cells), cells
    assert text.endswith("…向量数据库用于存储和检索高维向量。")  # the long one cut, with …, the short one whole


def test_pipeline_tables_use_the_words_of_crossrank_rerank(worker):
    result = subprocess.run(crossrank_command("rerank", "--target", f"127.0.0.1:{worker.port}", "什么是RAG技术？",
                                              "-d", "RAG是检索增强生成技术", "-d", "北京是中国的首都"),
                            capture_output=True, text=True, timeout=120, env={"COLUMNS": "80", "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    rerank_words = {w for w in re.split(r"[┃\s]+", next(line for line in result.stdout.splitlines() if "rank" in line))
                    if w}
    ours = ranked_table("q", [(1, 1, 0.5, "d", "x")])
    pipeline_words = {column.header for column in ours.columns}
    assert {"rank", "score", "document"} <= rerank_words & pipeline_words, (rerank_words, pipeline_words)
