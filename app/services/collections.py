"""Collections: named groups of documents (the unit of permission later on)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Collection
from app.errors import NotFound


class CollectionService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def ensure(self, name: str, *, description: str = "") -> Collection:
        """The collection called ``name``, created if missing."""
        name = name.strip()
        if not name:
            raise ValueError("collection name must not be empty")
        with self.sessions.begin() as s:
            existing = s.scalar(select(Collection).where(Collection.name == name))
            if existing is not None:
                return existing
            col = Collection(name=name, description=description)
            s.add(col)
        return col

    def get_by_name(self, name: str) -> Collection:
        with self.sessions() as s:
            col = s.scalar(select(Collection).where(Collection.name == name))
        if col is None:
            raise NotFound(f"no collection named {name!r}")
        return col

    def list_collections(self) -> list[Collection]:
        with self.sessions() as s:
            return list(s.scalars(select(Collection).order_by(Collection.name)))
