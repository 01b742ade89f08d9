"""Token-aware, heading-aware chunking with exact provenance.

A chunk never crosses a page or a section boundary, is measured in the embedding
model's own tokens, and its text is exactly ``page.text[char_start:char_end]``,
so a citation can always be traced to a span of its page.

A chunk is bounded in characters as well as in tokens (``max_chars``): the
tokenizer turns a run of more than 100 characters without whitespace into a
single ``[UNK]``, so a token budget alone once let one 94 MB "word" become one
chunk. Pages are tokenized in bounded windows and chunks come out in batches
(``batches``), so a huge document never has all its tokens or chunk texts in
memory at once.

Why not langchain's RecursiveCharacterTextSplitter: it re-finds each chunk's start
with ``str.find`` after stripping whitespace, which mislocates repeated passages,
and it knows nothing of pages or headings; the tokenizer's own offset mapping
gives exact spans for free.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter

from ingestion._tokens import TokenStream
from ingestion.parsers.base import Element, ParsedDocument
from retrieval.embedders.base import Tokenizer

# Where a long paragraph prefers to be cut: after a sentence end or a line break.
_BOUNDARY = re.compile(r"(?:[.!?;:](?=\s)|[。！？；]|\n)")
# A table is cut only between rows (a spreadsheet row line names its columns, so a
# piece of whole rows still reads alone), and a piece's overlap starts on a row.
_ROW_END = re.compile(r"\n")
_NON_SPACE = re.compile(r"\S")
_END = itemgetter(1)

#: A chunk may average this many characters per token before its character bound
#: cuts it: generous (English prose averages ~4.5, code and numbers fewer), so only
#: text the tokenizer barely splits (long runs without whitespace) reaches the bound.
CHARS_PER_TOKEN = 12
#: The character bound's ceiling, whatever the token budget.
MAX_CHUNK_CHARS = 32_768
#: Characters per tokenizer call: short elements are tokenized together up to this
#: much text, a longer element a window of this size at a time.
TOKENIZE_CHARS = 256 * 1024
#: Chunks per batch from ``Chunker.batches``.
BATCH_CHUNKS = 256


def chunk_char_limit(max_tokens: int) -> int:
    """The default character bound of a chunk of at most ``max_tokens`` tokens."""
    return min(max_tokens * CHARS_PER_TOKEN, MAX_CHUNK_CHARS)


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    text: str
    page: int
    section_path: tuple[str, ...]
    char_start: int
    char_end: int
    token_count: int
    #: Cut from a page whose text OCR read (``Page.ocr``).
    ocr: bool = False

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
    """Packs a parsed document's elements into chunks of at most ``max_tokens`` tokens
    and ``max_chars`` characters (default: ``chunk_char_limit(max_tokens)``)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        max_tokens: int = 256,
        overlap_tokens: int = 32,
        max_chars: int | None = None,
    ):
        if overlap_tokens >= max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.max_chars = chunk_char_limit(max_tokens) if max_chars is None else max_chars
        if self.max_chars < 1:
            raise ValueError("max_chars must be positive")

    def chunk(self, doc: ParsedDocument) -> list[ChunkDraft]:
        return [c for batch in self.batches(doc) for c in batch]

    def batches(
        self, doc: ParsedDocument, *, size: int = BATCH_CHUNKS
    ) -> Iterator[list[ChunkDraft]]:
        """The chunks of ``doc`` in order, at most ``size`` at a time."""
        pending: list[tuple[int, int, int, tuple[str, ...]]] = []
        ordinal = 0
        for group in self._groups(self._units(doc)):
            pending.extend(self._pack(group))
            while len(pending) >= size:
                yield self._drafts(doc, pending[:size], ordinal)
                del pending[:size]
                ordinal += size
        if pending:
            yield self._drafts(doc, pending, ordinal)

    def _drafts(
        self, doc: ParsedDocument, spans: list[tuple[int, int, int, tuple[str, ...]]], first: int
    ) -> list[ChunkDraft]:
        texts = [doc.pages[p - 1].text[s:e] for p, s, e, _ in spans]
        counts = [len(t) for t in self.tokenizer.token_spans(texts)]
        return [
            ChunkDraft(first + i, text, p, path, s, e, n, doc.pages[p - 1].ocr)
            for i, ((p, s, e, path), text, n) in enumerate(zip(spans, texts, counts, strict=True))
        ]

    # -- units: elements, with over-long ones cut into overlapping pieces -------------

    def _units(self, doc: ParsedDocument) -> Iterator[_Unit]:
        batch: list[Element] = []
        chars = 0
        for el in doc.elements:
            text = doc.pages[el.page - 1].text
            if not _NON_SPACE.search(text, el.start, el.end):
                continue
            if el.end - el.start > TOKENIZE_CHARS:
                yield from self._batch_units(doc, batch)
                batch, chars = [], 0
                stream = TokenStream(
                    self.tokenizer,
                    text,
                    el.start,
                    el.end,
                    window=TOKENIZE_CHARS,
                    piece=self.max_chars,
                )
                for a, b, n in self._split(text, stream, rows=el.kind == "table"):
                    yield self._unit(el, a, b, n, piece=True)
                continue
            batch.append(el)
            chars += el.end - el.start
            if chars >= TOKENIZE_CHARS:
                yield from self._batch_units(doc, batch)
                batch, chars = [], 0
        yield from self._batch_units(doc, batch)

    def _batch_units(self, doc: ParsedDocument, elements: list[Element]) -> Iterator[_Unit]:
        """Units of elements short enough to tokenize in one call."""
        if not elements:
            return
        token_spans = self.tokenizer.token_spans([doc.element_text(e) for e in elements])
        for el, toks in zip(elements, token_spans, strict=True):
            if len(toks) <= self.max_tokens and el.end - el.start <= self.max_chars:
                yield self._unit(el, el.start, el.end, len(toks), piece=False)
                continue
            stream = TokenStream.of(
                [(el.start + a, el.start + b) for a, b in toks], piece=self.max_chars
            )
            page_text = doc.pages[el.page - 1].text
            for a, b, n in self._split(page_text, stream, rows=el.kind == "table"):
                yield self._unit(el, a, b, n, piece=True)

    @staticmethod
    def _unit(el: Element, start: int, end: int, tokens: int, *, piece: bool) -> _Unit:
        return _Unit(el.page, start, end, tokens, el.section_path, el.kind == "heading", piece)

    def _split(
        self, text: str, toks: TokenStream, *, rows: bool = False
    ) -> Iterator[tuple[int, int, int]]:
        """Windows of at most max_tokens tokens and max_chars characters (offsets into
        ``text``), cut at sentence ends where possible, neighbours overlapping; with
        ``rows`` (a table), cut after a line and overlap from a line's start."""
        boundary = _ROW_END if rows else _BOUNDARY
        i = 0
        while toks.has(i):
            toks.has(i + self.max_tokens)  # tokenize as far as this window can reach
            spans, offset = toks.view()
            # The longest run of tokens from i within both budgets (at least one token:
            # the stream cuts any token longer than max_chars).
            hi = min(i + self.max_tokens, offset + len(spans)) - offset
            limit = spans[i - offset][0] + self.max_chars
            j = max(bisect_right(spans, limit, i - offset + 1, hi, key=_END) + offset, i + 1)
            start_char, end_char = toks[i][0], toks[j - 1][1]
            more = toks.has(j)
            if more:
                # Prefer the last sentence boundary in the window's final 40% (a
                # table: the last row end anywhere in the window).
                floor = toks[i][0] + 1 if rows else toks[i + int((j - i) * 0.6)][0]
                cut = None
                for m in boundary.finditer(text, floor, end_char):
                    cut = m.end()
                if cut is not None:
                    k = i
                    while k < j and toks[k][1] <= cut:
                        k += 1
                    if k > i:
                        j, end_char = k, toks[k - 1][1]
            yield start_char, end_char, j - i
            if not more:
                break
            nxt = max(j - self.overlap_tokens, i + 1)
            if rows and nxt < j:
                row_start = text.find("\n", toks[nxt][0], toks[j][0])
                while nxt < j and (row_start < 0 or toks[nxt][0] < row_start):
                    nxt += 1  # overlap whole rows only (or none)
            if toks[j][1] - toks[nxt][0] > self.max_chars:
                nxt = j  # with the overlap, the next window could not reach past this one
            toks.release(nxt)
            i = nxt

    # -- groups: runs of units on one page under one heading --------------------------

    @staticmethod
    def _groups(units: Iterable[_Unit]) -> Iterator[list[_Unit]]:
        current: list[_Unit] = []
        for u in units:
            if current and (u.page, u.section_path) != (current[-1].page, current[-1].section_path):
                # A heading followed straight by a sub-heading travels with the sub-section.
                if all(x.heading for x in current) and u.page == current[-1].page:
                    current.append(u)
                    continue
                yield current
                current = []
            current.append(u)
        if current:
            yield current

    def _pack(self, group: list[_Unit]) -> list[tuple[int, int, int, tuple[str, ...]]]:
        path = group[-1].section_path
        out: list[tuple[int, int, int, tuple[str, ...]]] = []
        chunk: list[_Unit] = []
        tokens = 0
        for u in group:
            if chunk and (
                tokens + u.tokens > self.max_tokens or u.end - chunk[0].start > self.max_chars
            ):
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
            if (
                tokens + u.tokens + nxt.tokens > self.max_tokens
                or nxt.end - u.start > self.max_chars
            ):
                break
            carried.insert(0, u)
            tokens += u.tokens
        return carried, tokens
