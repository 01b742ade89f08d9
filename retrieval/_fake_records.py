"""What the fake vector store and fake lexical index share: records kept in a dict."""

from __future__ import annotations

from collections.abc import Collection
from typing import Generic, Protocol, TypeVar


class _Record(Protocol):
    @property
    def document_id(self) -> str: ...
    @property
    def collection_id(self) -> str: ...


R = TypeVar("R", bound=_Record)


class FakeRecords(Generic[R]):
    """``document_ids`` and ``count`` over ``self._records`` (chunk id -> record)."""

    _records: dict[str, R]

    def document_ids(self) -> set[str]:
        return {r.document_id for r in self._records.values()}

    def count(self, *, collections: Collection[str] | None = None) -> int:
        if collections is None:
            return len(self._records)
        return sum(r.collection_id in collections for r in self._records.values())
