"""Token spans of a long text, produced a window at a time so memory stays bounded.

Tokenizing a 90 MB page in one call holds every token's offsets (and the Rust
encoding behind them) at once: gigabytes. ``TokenStream`` tokenizes the text in
windows cut at whitespace, hands out spans by index and forgets the ones the
chunker has moved past. It also cuts any token longer than ``piece`` characters
into ``piece``-sized parts: a WordPiece tokenizer turns a run of more than 100
characters without whitespace into one ``[UNK]`` token, however long the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from retrieval.embedders.base import Tokenizer

Span = tuple[int, int]

#: Drop consumed spans only in batches this large (deleting a list prefix costs its length).
_RELEASE_AT = 4096


def cut_long(spans: Iterable[Span], piece: int) -> list[Span]:
    """``spans`` with every span longer than ``piece`` characters cut into equal parts of
    at most ``piece`` (so no part is a short tail: a WordPiece tokenizer would split a
    part under 100 characters into many sub-word tokens)."""
    out: list[Span] = []
    for a, b in spans:
        length = b - a
        if length <= piece:
            out.append((a, b))
            continue
        parts = -(-length // piece)
        out.extend((a + k * length // parts, a + (k + 1) * length // parts) for k in range(parts))
    return out


class TokenStream:
    """The token spans of ``text[start:end]``, as absolute offsets into ``text``.

    Index ``i`` is the i-th token of the whole range; ``has(i)`` tokenizes as far as
    needed to say whether it exists. Spans before the index given to ``release`` may
    be forgotten and must not be asked for again.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None,
        text: str,
        start: int,
        end: int,
        *,
        window: int,
        piece: int,
        spans: Sequence[Span] = (),
    ) -> None:
        self._tokenizer = tokenizer
        self._text = text
        self._next = start  # first character not tokenized yet
        self._end = end
        self._window = window
        self._piece = piece
        self._spans: list[Span] = cut_long(spans, piece)
        self._offset = 0  # stream index of self._spans[0]
        self._carry: Span | None = None  # a run of the last window that may continue

    @classmethod
    def of(cls, spans: Sequence[Span], *, piece: int) -> TokenStream:
        """A stream over spans already computed (a short element tokenized in a batch)."""
        return cls(None, "", 0, 0, window=1, piece=piece, spans=spans)

    def has(self, i: int) -> bool:
        while i - self._offset >= len(self._spans) and self._next < self._end:
            self._read()
        return i - self._offset < len(self._spans)

    def __getitem__(self, i: int) -> Span:
        return self._spans[i - self._offset]

    def view(self) -> tuple[list[Span], int]:
        """The spans held now and the stream index of the first (for bisecting)."""
        return self._spans, self._offset

    def release(self, i: int) -> None:
        drop = i - self._offset
        if drop >= _RELEASE_AT:
            del self._spans[:drop]
            self._offset = i

    def _read(self) -> None:
        assert self._tokenizer is not None
        a = self._next
        b = min(a + self._window, self._end)
        window = self._text[a:b]
        spans = [(a + s, a + e) for s, e in self._tokenizer.token_spans([window])[0]]
        self._next = b
        if b < self._end and spans:
            # The window may end inside a word: keep the tokens that end at its last
            # whitespace and read the rest again with the next window.
            cut = a + max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
            kept = sum(1 for _, e in spans if e <= cut) if cut > a else 0
            if kept:
                self._next = spans[kept][0] if kept < len(spans) else cut
                del spans[kept:]
            elif len(spans) > 1:  # no whitespace: read the last token again
                self._next = spans.pop()[0]
            self._next = max(self._next, a + 1)  # always move on
        if self._carry is not None:
            if spans and spans[0][0] == self._carry[1]:
                spans[0] = (self._carry[0], spans[0][1])
            else:
                spans.insert(0, self._carry)
            self._carry = None
        if spans and spans[-1][1] == self._next == b < self._end:
            # One token fills the window: a run without whitespace that may go on.
            self._carry = spans.pop()
        self._spans.extend(cut_long(spans, self._piece))
