"""In-memory collections of the BM25 index and their bm25s models (see ``bm25_index``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt

from retrieval.lexical import _bm25_files as files
from retrieval.lexical._bm25_files import CollectionData, Int32Array

MAX_DEAD_FRACTION = 0.25  # deleted rows a model may mask before it is rebuilt


@dataclass(frozen=True)
class Model:
    """A bm25s model over a snapshot of a collection's rows; never changed once built
    (a deletion makes a copy with another ``mask``), so searches use it unlocked."""

    bm25: Any  # None when every chunk of the snapshot is empty
    order: list[tuple[str, str]]  # model row -> (chunk id, document id)
    row_of: dict[str, int]
    mask: npt.NDArray[np.float32] | None = None  # 0 for deleted rows; None: none deleted
    dead: int = 0


@dataclass(eq=False)
class Shard:
    """One collection in memory: chunk id -> (document id, term ids) and its vocabulary.

    ``model`` is None or matches ``rows`` exactly (deleted rows masked); ``version``
    counts changes, so a model built from an older snapshot is not installed.
    """

    terms: list[str] = field(default_factory=list)
    vocab: dict[str, int] = field(default_factory=dict)
    rows: dict[str, tuple[str, Int32Array]] = field(default_factory=dict)
    model: Model | None = None
    version: int = 0
    build_lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, chunk_id: str, document_id: str, tokens: list[str]) -> None:
        ids = []
        for term in tokens:
            i = self.vocab.get(term)
            if i is None:
                i = self.vocab[term] = len(self.terms)
                self.terms.append(term)
            ids.append(i)
        self.rows[chunk_id] = (document_id, np.asarray(ids, dtype=np.int32))
        self.model = None
        self.version += 1

    def remove(self, chunk_ids: list[str]) -> None:
        for chunk_id in chunk_ids:
            del self.rows[chunk_id]
        self.version += 1
        model = self.model
        if model is None:
            return
        dead = model.dead + len(chunk_ids)
        if dead > MAX_DEAD_FRACTION * len(model.order):
            self.model = None
            return
        mask = np.ones(len(model.order), np.float32) if model.mask is None else model.mask.copy()
        mask[[model.row_of[c] for c in chunk_ids]] = 0.0
        self.model = replace(model, mask=mask, dead=dead)

    def data(self) -> CollectionData:
        """The rows as stored, with terms no chunk uses any more dropped."""
        offsets, tokens = files.pack_rows([ids for _, ids in self.rows.values()])
        used = np.flatnonzero(np.bincount(tokens, minlength=len(self.terms)))
        if len(used) < len(self.terms):  # re-number compactly, in memory too (models
            # keep their own vocabulary, so they stay valid)
            remap = np.full(len(self.terms), -1, dtype=np.int32)
            remap[used] = np.arange(len(used), dtype=np.int32)
            tokens = remap[tokens]
            self.terms = [self.terms[i] for i in used.tolist()]
            self.vocab = {t: i for i, t in enumerate(self.terms)}
            rows = np.split(tokens, offsets[1:-1])
            self.rows = {c: (d, r) for (c, (d, _)), r in zip(self.rows.items(), rows, strict=True)}
        return CollectionData(
            chunk_ids=list(self.rows),
            document_ids=[d for d, _ in self.rows.values()],
            terms=list(self.terms),
            offsets=offsets,
            tokens=tokens,
        )


def build_model(
    rows: list[tuple[str, tuple[str, Int32Array]]], vocab: dict[str, int], params: dict[str, Any]
) -> Model:
    """A bm25s model of ``rows`` (chunk id -> document id, term ids into ``vocab``)."""
    # bm25s takes Python lists of ints; indexing an object array of the vocabulary's ids
    # makes every list refer to one int per term instead of one per token (~4x smaller).
    ints = np.array(list(range(len(vocab))), dtype=object)
    corpus = [ints[ids].tolist() for _, (_, ids) in rows]
    bm25 = None
    if any(corpus):  # bm25s divides by the mean length: an all-empty corpus has none
        bm25 = bm25s.BM25(**params)
        bm25.index((corpus, vocab), create_empty_token=False, show_progress=False)
    return Model(
        bm25=bm25,
        order=[(c, d) for c, (d, _) in rows],
        row_of={c: i for i, (c, _) in enumerate(rows)},
    )


def top_rows(model: Model, terms: list[str], k: int) -> list[tuple[float, tuple[str, str]]]:
    """The best ``k`` rows of one model with a positive score (all ties at the k-th kept)."""
    if model.bm25 is None:
        return []
    known = [t for t in terms if t in model.bm25.vocab_dict]
    if not known:
        return []
    scores = model.bm25.get_scores(known, weight_mask=model.mask)
    rows = np.flatnonzero(scores > 0)
    if len(rows) > k:
        kth = np.partition(scores[rows], len(rows) - k)[len(rows) - k]
        rows = rows[scores[rows] >= kth]
    return [(float(scores[i]), model.order[i]) for i in rows.tolist()]
