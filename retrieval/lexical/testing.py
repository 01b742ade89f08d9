"""A deterministic stand-in lexical index for tests: BM25 without length normalisation,
recomputed per search over a dict, persisted as one JSON file on ``flush``.

It uses the real ``Analyzer`` (stemming, stop words, Chinese segmentation), so it keeps
the whole ``LexicalIndex`` contract with none of the BM25 index's sharding and caching.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from retrieval._atomic import atomic_write_json
from retrieval._fake_records import FakeRecords
from retrieval.errors import LexicalIndexError
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.base import LexicalHit, LexicalRecord

DATA_NAME = "fake-lexical.json"
K1 = 1.2


class FakeLexicalIndex(FakeRecords[LexicalRecord]):
    """Exact term scoring over every stored chunk."""

    def __init__(self, directory: Path, *, cache_dir: Path | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._analyzer = Analyzer(cache_dir=cache_dir)
        self._records: dict[str, LexicalRecord] = {}
        self._terms: dict[str, Counter[str]] = {}
        path = self.directory / DATA_NAME
        if path.exists():
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))["records"]
            except (OSError, ValueError, KeyError) as e:
                raise LexicalIndexError(f"cannot read {path}: {e}; run `lantern reindex`") from e
            self.upsert([LexicalRecord(*row) for row in rows])

    def upsert(self, records: Sequence[LexicalRecord]) -> None:
        for r, terms in zip(
            records, self._analyzer.tokens_many(r.text for r in records), strict=True
        ):
            self._records[r.chunk_id] = r
            self._terms[r.chunk_id] = Counter(terms)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        gone = set(document_ids)
        doomed = [c for c, r in self._records.items() if r.document_id in gone]
        for chunk_id in doomed:
            del self._records[chunk_id], self._terms[chunk_id]
        return len(doomed)

    def search(
        self, query: str, *, k: int, collections: Collection[str] | None = None
    ) -> list[LexicalHit]:
        if k < 0:
            raise LexicalIndexError(f"k must not be negative, got {k}")
        wanted = set(self._analyzer.tokens(query))
        if not wanted or k == 0:
            return []
        n = len(self._terms)
        df = {t: sum(t in terms for terms in self._terms.values()) for t in wanted}
        scored: list[tuple[float, str]] = []
        for chunk_id, terms in self._terms.items():
            record = self._records[chunk_id]
            if collections is not None and record.collection_id not in collections:
                continue
            score = sum(
                math.log(1 + n / df[t]) * terms[t] * (K1 + 1) / (terms[t] + K1)
                for t in wanted
                if terms[t]
            )
            if score > 0:
                scored.append((score, chunk_id))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [
            LexicalHit(c, self._records[c].document_id, self._records[c].collection_id, s)
            for s, c in scored[:k]
        ]

    def flush(self) -> None:
        rows = [
            [r.chunk_id, r.document_id, r.collection_id, r.text] for r in self._records.values()
        ]
        atomic_write_json(self.directory / DATA_NAME, {"records": rows})

    def clear(self) -> None:
        self._records.clear()
        self._terms.clear()

    def close(self) -> None:
        pass
