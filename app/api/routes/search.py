"""Ranked chunks for a query, within the caller's readable collections."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ContainerDep, CurrentActor
from app.api.schemas import SearchHitOut, SearchIn

router = APIRouter(tags=["search"])


@router.post("/search", response_model=list[SearchHitOut])
def search(body: SearchIn, who: CurrentActor, c: ContainerDep) -> list[SearchHitOut]:
    """Hybrid (dense + BM25) search, permission-filtered inside both searches."""
    hits = c.library.search(who, body.query, k=body.k, collection_ids=body.collection_ids)
    return [
        SearchHitOut(
            chunk_id=h.chunk_id,
            document_id=h.document_id,
            document_name=h.document_name,
            collection=h.collection,
            title=h.title,
            page=h.page,
            text=h.text,
            score=h.score,
            ocr=h.ocr,
        )
        for h in hits
    ]
