"""Search over ready documents: hybrid retrieval, then chunks with their provenance."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Collection as Coll
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.db.repositories.chunks import ChunkRepository
from retrieval.hybrid import HybridRetriever, Mode


@dataclass(frozen=True)
class SearchResult:
    chunk_id: str
    document_id: str
    document_name: str
    title: str | None
    collection: str
    #: None for formats without real pages (DOCX, HTML, Markdown, TXT).
    page: int | None
    section_path: tuple[str, ...]
    text: str
    char_start: int
    char_end: int
    score: float
    ordinal: int = 0
    token_count: int = 0
    #: The chunk's text was read by OCR from an image of its page.
    ocr: bool = False


class SearchService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        retriever: Callable[[], HybridRetriever],
        *,
        mode: Mode = "hybrid",
    ) -> None:
        self.sessions = sessions
        self.chunks = ChunkRepository(sessions)
        self._retriever = retriever
        self.mode = mode

    def chunk_texts(self, chunk_ids: Sequence[str]) -> Mapping[str, str]:
        """Texts of these chunks, for chunks of ready documents only: a document being
        published or deleted never surfaces, even though its vectors may exist."""
        return self.chunks.ready_texts(chunk_ids)

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        collection_ids: Coll[str] | None = None,
        mode: Mode | None = None,
    ) -> list[SearchResult]:
        """The ``k`` best chunks for ``query`` in the given collections (all if None)."""
        return self.search_with_evidence(query, k=k, collection_ids=collection_ids, mode=mode)[0]

    def search_with_evidence(
        self,
        query: str,
        *,
        k: int = 5,
        collection_ids: Coll[str] | None = None,
        mode: Mode | None = None,
    ) -> tuple[list[SearchResult], float | None]:
        """Like ``search``, plus the cosine of the closest chunk (None in bm25 mode, which
        has no such signal): what the answer service abstains on."""
        storable.check(query=query)  # the tokenizer cannot encode a lone surrogate
        if not query.strip() or k <= 0:
            return [], 0.0
        result = self._retriever().retrieve(
            query, k=k, collections=collection_ids, mode=mode or self.mode
        )
        hits = self.load([c.chunk_id for c in result], {c.chunk_id: c.score for c in result})
        return hits, result.top_dense_score

    def load(self, chunk_ids: Sequence[str], scores: Mapping[str, float]) -> list[SearchResult]:
        """Chunks with document and collection details, in the order given; chunks of
        documents that are not ready are dropped."""
        by_id = self.chunks.ready_with_documents(chunk_ids)
        out: list[SearchResult] = []
        for cid in chunk_ids:
            if cid not in by_id:
                continue
            c, d, cname = by_id[cid]
            out.append(
                SearchResult(
                    chunk_id=c.id,
                    document_id=d.id,
                    document_name=d.name,
                    title=d.title,
                    collection=cname,
                    page=c.page if d.paginated else None,
                    section_path=tuple(c.section_path or ()),
                    text=c.text,
                    char_start=c.char_start,
                    char_end=c.char_end,
                    score=scores.get(cid, 0.0),
                    ordinal=c.ordinal,
                    token_count=c.token_count,
                    ocr=bool(c.ocr),
                )
            )
        return out
