"""Token-aware, heading-aware chunking with exact provenance.

A chunk never crosses a page or a section boundary, is measured in the embedding
model's own tokens, and its text is exactly ``page.text[char_start:char_end]``,
so a citation can always be traced to a span of its page.

Why not langchain's RecursiveCharacterTextSplitter: it re-finds each chunk's start
with ``str.find`` after stripping whitespace, which mislocates repeated passages,
and it knows nothing of pages or headings; the tokenizer's own offset mapping
gives exact spans for free.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ingestion.parsers.base import Element, ParsedDocument
from retrieval.embedders.base import Tokenizer

# Where a long paragraph prefers to be cut: after a sentence end or a line break.
_BOUNDARY = re.compile(r"(?:[.!?;:](?=\s)|[。！？；]|\n)")


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    text: str
    page: int
    section_path: tuple[str, ...]
    char_start: int
    char_end: int
    token_count: int

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def embedding_text(self, title: str | None = None) -> str:
        """Text sent to the embedder: the heading trail gives a short passage its context."""
        trail = [p for p in ((title,) if title else ()) + self.section_path if p]
        header = " > ".join(dict.fromkeys(trail))
        return f"{header}\n\n{self.text}" if header else self.text


def chunk_id(document_id: str, ordinal: int, content_hash: str) -> str:
    """Deterministic: the same document id, position and text always give the same id."""
    raw = f"{document_id}:{ordinal}:{content_hash}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class _Unit:
    page: int
    start: int
    end: int
    tokens: int
    section_path: tuple[str, ...]
    heading: bool
    piece: bool  # part of an element that was too long for one chunk


class Chunker:
    """Packs a parsed document's elements into chunks of at most ``max_tokens``."""

    def __init__(self, tokenizer: Tokenizer, *, max_tokens: int = 256, overlap_tokens: int = 32):
        if overlap_tokens >= max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def chunk(self, doc: ParsedDocument) -> list[ChunkDraft]:
        units = self._units(doc)
        spans: list[tuple[int, int, int, tuple[str, ...]]] = []
        for group in self._groups(units):
            spans.extend(self._pack(group))
        texts = [doc.pages[p - 1].text[s:e] for p, s, e, _ in spans]
        counts = [len(t) for t in self.tokenizer.token_spans(texts)]
        return [
            ChunkDraft(i, text, p, path, s, e, n)
            for i, ((p, s, e, path), text, n) in enumerate(zip(spans, texts, counts, strict=True))
        ]

    # -- units: elements, with over-long ones cut into overlapping pieces -------------

    def _units(self, doc: ParsedDocument) -> list[_Unit]:
        elements = [e for e in doc.elements if doc.element_text(e).strip()]
        token_spans = self.tokenizer.token_spans([doc.element_text(e) for e in elements])
        units: list[_Unit] = []
        for el, toks in zip(elements, token_spans, strict=True):
            if len(toks) <= self.max_tokens:
                units.append(self._unit(el, el.start, el.end, len(toks), piece=False))
                continue
            text = doc.element_text(el)
            for a, b, n in self._split(text, toks):
                units.append(self._unit(el, el.start + a, el.start + b, n, piece=True))
        return units

    @staticmethod
    def _unit(el: Element, start: int, end: int, tokens: int, *, piece: bool) -> _Unit:
        return _Unit(el.page, start, end, tokens, el.section_path, el.kind == "heading", piece)

    def _split(self, text: str, toks: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
        """Windows of at most max_tokens tokens, cut at sentence ends where possible."""
        pieces: list[tuple[int, int, int]] = []
        i, n = 0, len(toks)
        while i < n:
            j = min(i + self.max_tokens, n)
            start_char, end_char = toks[i][0], toks[j - 1][1]
            if j < n:
                # Prefer the last sentence boundary in the window's final 40%.
                floor = toks[i + int((j - i) * 0.6)][0]
                cut = None
                for m in _BOUNDARY.finditer(text, floor, end_char):
                    cut = m.end()
                if cut is not None:
                    k = i
                    while k < j and toks[k][1] <= cut:
                        k += 1
                    if k > i:
                        j, end_char = k, toks[k - 1][1]
            pieces.append((start_char, end_char, j - i))
            if j >= n:
                break
            i = max(j - self.overlap_tokens, i + 1)
        return pieces

    # -- groups: runs of units on one page under one heading --------------------------

    @staticmethod
    def _groups(units: list[_Unit]) -> list[list[_Unit]]:
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        for u in units:
            if current and (u.page, u.section_path) != (current[-1].page, current[-1].section_path):
                # A heading followed straight by a sub-heading travels with the sub-section.
                if all(x.heading for x in current) and u.page == current[-1].page:
                    current.append(u)
                    continue
                groups.append(current)
                current = []
            current.append(u)
        if current:
            groups.append(current)
        return groups

    def _pack(self, group: list[_Unit]) -> list[tuple[int, int, int, tuple[str, ...]]]:
        path = group[-1].section_path
        out: list[tuple[int, int, int, tuple[str, ...]]] = []
        chunk: list[_Unit] = []
        tokens = 0
        for u in group:
            if chunk and tokens + u.tokens > self.max_tokens:
                out.append((chunk[0].page, chunk[0].start, chunk[-1].end, path))
                chunk, tokens = self._overlap(chunk, u)
            chunk.append(u)
            tokens += u.tokens
        if chunk:
            out.append((chunk[0].page, chunk[0].start, chunk[-1].end, path))
        return out

    def _overlap(self, previous: list[_Unit], nxt: _Unit) -> tuple[list[_Unit], int]:
        """Trailing whole elements of the previous chunk to repeat, within the overlap."""
        carried: list[_Unit] = []
        tokens = 0
        for u in reversed(previous):
            if u.piece or nxt.piece or tokens + u.tokens > self.overlap_tokens:
                break
            if tokens + u.tokens + nxt.tokens > self.max_tokens:
                break
            carried.insert(0, u)
            tokens += u.tokens
        return carried, tokens
