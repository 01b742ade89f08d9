"""A bounded LRU cache of document embeddings by text, for texts embedded again and
again (the sentences the extractive backend compares with each question)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from retrieval.embedders.base import Embedder, Matrix


class EmbeddingCache:
    def __init__(self, embedder: Embedder, *, max_items: int = 20_000) -> None:
        self.embedder = embedder
        self.max_items = max_items
        self._rows: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        """One normalised row per text, in order; only texts not cached are embedded."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            fresh = self.embedder.embed_documents(missing)
            with self._lock:
                for text, row in zip(missing, fresh, strict=True):
                    self._rows[text] = row
                while len(self._rows) > self.max_items:
                    self._rows.popitem(last=False)
        with self._lock:
            rows = []
            for t in texts:
                row = self._rows.get(t)
                if row is None:  # evicted meanwhile by a burst of other texts
                    row = self.embedder.embed_documents([t])[0]
                else:
                    self._rows.move_to_end(t)
                rows.append(row)
        return np.vstack(rows).astype(np.float32, copy=False)

    def __len__(self) -> int:
        return len(self._rows)
