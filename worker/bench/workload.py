"""Benchmark inputs: queries with 20-100 documents each, in English and Chinese, of known token lengths.

Texts are built from units that a BERT WordPiece tokenizer keeps as one token each (common
English words, single CJK characters), so a document asked to be n tokens long is about n
tokens long. The lengths actually fed to the model are measured later with the worker's own
pair encoder; these targets only shape the distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_DOC_TOKENS = 20
MAX_DOC_TOKENS = 500
# Log-normal document lengths: median ~110 tokens, a long tail clipped at 500, as in web passages.
LOGNORMAL_MEDIAN = 110.0
LOGNORMAL_SIGMA = 0.75

_ENGLISH = (  # noqa: SIM905 (a word list reads better as text)
    "the of and to in is for that on with as by at from this are be was it an or which have has not "
    "but can will their more also been one all new other its were used may time they first two these "
    "data model search system query document rank retrieval language large vector index answer user "
    "people world city year state work school water health market price power energy history science "
    "research study results method process information network service public company government "
    "music game film book river country capital century number level group family area point"
).split()
_CHINESE = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使"
    "点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明"
    "看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料"
    "象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "检索排序模型文档查询技术生成增强语言向量数据库"
)
_QUERIES = {
    "en": ["what is retrieval augmented generation", "how does a vector index answer a query",
           "history of the city market", "which model ranks documents best", "health research results"],
    "zh": ["什么是RAG技术？", "向量数据库如何检索文档", "重排序模型的原理", "城市的历史和文化", "大语言模型的生成质量"],
}


@dataclass(frozen=True)
class BenchQuery:
    query: str
    documents: list[str]
    language: str  # "en" or "zh"
    target_tokens: list[int]  # the length each document was built to


def document_lengths(rng: np.random.Generator, n: int, fixed_length: int = 0) -> np.ndarray:
    """Target token lengths: log-normal clipped to [20, 500], or all `fixed_length`."""
    if fixed_length:
        return np.full(n, fixed_length, dtype=np.int64)
    raw = rng.lognormal(np.log(LOGNORMAL_MEDIAN), LOGNORMAL_SIGMA, n)
    return np.clip(np.rint(raw), MIN_DOC_TOKENS, MAX_DOC_TOKENS).astype(np.int64)


def _text(rng: np.random.Generator, language: str, tokens: int) -> str:
    if language == "zh":
        return "".join(rng.choice(list(_CHINESE), tokens))
    return " ".join(rng.choice(_ENGLISH, tokens))


def make_workload(n_queries: int, seed: int = 0, fixed_length: int = 0, min_docs: int = 20,
                  max_docs: int = 100, languages: tuple[str, ...] = ("en", "zh")) -> list[BenchQuery]:
    """`n_queries` queries alternating between the languages, each with min_docs..max_docs documents."""
    rng = np.random.default_rng(seed)
    workload = []
    for q in range(n_queries):
        language = languages[q % len(languages)]
        n_docs = int(rng.integers(min_docs, max_docs + 1))
        lengths = document_lengths(rng, n_docs, fixed_length)
        query = _QUERIES[language][q % len(_QUERIES[language])]
        docs = [_text(rng, language, int(n)) for n in lengths]
        workload.append(BenchQuery(query, docs, language, lengths.tolist()))
    return workload
