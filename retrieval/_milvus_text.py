"""Milvus full-text fields, shared by the lexical index and a vector store that keeps the
chunks' text beside their vectors (so hybrid search is one ``hybrid_search`` call).

``terms`` (VARCHAR with an analyzer) holds Lantern's analysed tokens joined by spaces,
``sparse`` (SPARSE_FLOAT_VECTOR) the output of a BM25 ``Function`` on it, indexed with
metric BM25; see ``retrieval.lexical.milvus_index`` for why the tokens are Lantern's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymilvus import AnnSearchRequest, DataType, Function, FunctionType

from retrieval._milvus import in_filter
from retrieval._sharded import REINDEX_HINT
from retrieval.errors import RetrievalError
from retrieval.lexical.analyzer import Analyzer

log = logging.getLogger(__name__)

MAX_TERMS_BYTES = 65535  # Milvus's longest VARCHAR
TERMS, SPARSE = "terms", "sparse"


@dataclass(frozen=True)
class FullText:
    """How a Milvus collection analyses and scores text (the lexical settings)."""

    k1: float = 1.5
    b: float = 0.75
    language: str = "english"
    stopwords: bool = True
    cache_dir: Path | None = None

    def check(self, error: type[RetrievalError]) -> None:
        if self.k1 <= 0 or not 0 <= self.b <= 1:
            raise error(f"need k1 > 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")

    def analyzer(self) -> Analyzer:
        return Analyzer(language=self.language, stopwords=self.stopwords, cache_dir=self.cache_dir)


def tokenizer_for(lite: bool) -> str:
    """Milvus's tokenizer, which only has to split our tokens on spaces: milvus-lite has
    no ``whitespace`` tokenizer, and ``standard`` (``\\w+``) leaves our tokens intact."""
    return "standard" if lite else "whitespace"


def add_text_fields(schema: Any, *, tokenizer: str, nullable: bool = False) -> None:
    """``terms`` and the BM25 ``sparse`` field computed from it (``nullable``: a row may
    have no text, as a vector written before its text)."""
    schema.add_field(
        TERMS,
        DataType.VARCHAR,
        max_length=MAX_TERMS_BYTES,
        enable_analyzer=True,
        analyzer_params={"tokenizer": tokenizer},
        nullable=nullable,
    )
    schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=[TERMS],
            output_field_names=[SPARSE],
        )
    )


def add_text_index(params: Any, full_text: FullText) -> None:
    params.add_index(
        field_name=SPARSE,
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": full_text.k1, "bm25_b": full_text.b},
    )


def text_manifest(analyzer: Analyzer, tokenizer: str, partition_key: bool) -> dict[str, Any]:
    """What decides which tokens a query meets: checked on open by ``check_text``."""
    return {
        "analyzer": analyzer.fingerprint,
        "tokenizer": tokenizer,
        "partition_key": partition_key,
    }


def check_text(
    found: dict[str, Any], expected: dict[str, Any], *, where: str, error: type[RetrievalError]
) -> None:
    for key, value in expected.items():
        if found.get(key) != value:
            raise error(
                f"{where} was analysed with {key} {found.get(key)!r}, but the configured "
                f"one is {value!r}; queries would not match its tokens; {REINDEX_HINT}"
            )


def terms_text(chunk_id: str, terms: list[str]) -> str:
    """The tokens as Milvus stores them: space-separated, cut to the VARCHAR limit."""
    text = " ".join(terms)
    if len(text.encode("utf-8")) <= MAX_TERMS_BYTES:
        return text
    cut = text.encode("utf-8")[:MAX_TERMS_BYTES].decode("utf-8", "ignore")
    log.warning("chunk %s has more terms than Milvus stores; indexed its first part", chunk_id)
    return cut.rsplit(" ", 1)[0]


def bm25_request(terms: list[str], *, limit: int, collections: Any) -> AnnSearchRequest:
    """The BM25 half of a hybrid search, filtered to ``collections`` inside it."""
    return AnnSearchRequest(
        data=[" ".join(terms)],
        anns_field=SPARSE,
        param={"metric_type": "BM25"},
        limit=limit,
        expr=in_filter("collection_id", collections),
    )


def bm25_score(distance: float) -> float:
    """milvus-lite reports BM25 as a negated distance, a server as the score."""
    return abs(distance)
