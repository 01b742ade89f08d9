"""Search hits packed into the prompt's context budget as numbered sources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.services.search import SearchResult
from llm.base import Source
from retrieval.packing import PackCandidate, pack


def pack_sources(
    hits: Sequence[SearchResult],
    *,
    pages: Mapping[tuple[str, int], str],
    max_tokens: int,
) -> list[Source]:
    """The hits that fit in ``max_tokens``, best first and numbered from 1, with
    neighbours of one section merged into one source (``pages``: the text of every
    page the hits are on, by document id and page number, so merges are exact)."""
    by_chunk = {h.chunk_id: h for h in hits}

    def page_text(document_id: str, page: int | None) -> str:
        # Formats without real pages keep their whole text as page 1.
        return pages.get((document_id, page or 1), "")

    packed = pack([_candidate(h) for h in hits], max_tokens=max_tokens, page_text=page_text)
    out: list[Source] = []
    for n, p in enumerate(packed, 1):
        first = by_chunk[p.chunk_ids[0]]
        out.append(
            Source(
                n=n,
                chunk_id=p.chunk_ids[0],
                document_id=p.document_id,
                title=first.title or first.document_name,
                page=p.page,
                text=p.text,
                char_start=p.char_start,
                ocr=first.ocr,
            )
        )
    return out


def _candidate(hit: SearchResult) -> PackCandidate:
    return PackCandidate(
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        ordinal=hit.ordinal,
        page=hit.page,
        section_path=hit.section_path,
        text=hit.text,
        char_start=hit.char_start,
        char_end=hit.char_end,
        token_count=hit.token_count,
        score=hit.score,
    )
