"""Index generations: one counter per collection, bumped whenever what retrieval can
return from it changes, so a cached answer keyed on the counters goes stale at the
commit that changed its collections, in every process that shares the database."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Collection


def bump(s: Session, collection_ids: Iterable[str]) -> None:
    """Advance the generation of each collection, inside the caller's transaction (an
    answer built before the commit keeps its older key, which nothing asks for again)."""
    ids = sorted(set(collection_ids))
    if ids:
        s.execute(
            update(Collection)
            .where(Collection.id.in_(ids))
            .values(index_generation=Collection.index_generation + 1)
        )


def bump_all(s: Session) -> None:
    """Advance every collection's generation (the whole index was rebuilt)."""
    s.execute(update(Collection).values(index_generation=Collection.index_generation + 1))


def current(
    sessions: sessionmaker[Session], collection_ids: Iterable[str] | None
) -> dict[str, int]:
    """The generation of each collection (None: of every collection); a collection that
    no longer exists is left out."""
    q = select(Collection.id, Collection.index_generation)
    if collection_ids is not None:
        ids = sorted(set(collection_ids))
        if not ids:
            return {}
        q = q.where(Collection.id.in_(ids))
    with sessions() as s:
        return {str(cid): int(gen) for cid, gen in s.execute(q)}
