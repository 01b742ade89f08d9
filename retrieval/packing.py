"""Fit the best chunks into the prompt's token budget, merging neighbours into one source.

Chunks are taken best first while they fit. Chunks of the same document, page and
section that are neighbours (adjacent ordinals, or touching/overlapping character spans)
become one source whose text is the exact page substring from the first start to the
last end, so the overlap that chunking repeats is sent once and a citation still points
at one span of one page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

PageText = Callable[[str, int | None], str]
"""``(document_id, page) -> that page's full text`` (the text chunk offsets index)."""
TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class PackCandidate:
    chunk_id: str
    document_id: str
    ordinal: int
    page: int | None
    section_path: tuple[str, ...]
    #: Exactly ``page_text[char_start:char_end]`` (what chunking guarantees).
    text: str
    char_start: int
    char_end: int
    token_count: int
    score: float


@dataclass(frozen=True)
class PackedSource:
    document_id: str
    page: int | None
    section_path: tuple[str, ...]
    #: Member chunks in text order.
    chunk_ids: tuple[str, ...]
    text: str
    char_start: int
    char_end: int
    #: Exact when ``pack`` was given a token counter, otherwise an upper bound.
    token_count: int
    #: The best member's score.
    score: float


@dataclass(eq=False)
class _Group:
    key: tuple[str, int | None, tuple[str, ...]]
    members: list[PackCandidate]
    first_seen: int

    @property
    def score(self) -> float:
        return max(m.score for m in self.members)


def pack(
    chunks: Sequence[PackCandidate],
    *,
    max_tokens: int,
    page_text: PageText | None = None,
    count_tokens: TokenCounter | None = None,
) -> list[PackedSource]:
    """Sources, best first, whose token counts sum to at most ``max_tokens``.

    Candidates are visited by descending score (ties keep input order); one that does
    not fit is skipped and smaller ones after it may still fit. Neighbours with a gap
    between their spans are merged only when ``page_text`` can supply the gap's exact
    text. With ``count_tokens`` a merged source is measured exactly; without it, it is
    costed as its members' token counts plus one token per non-space gap character (an
    upper bound, since the overlap is counted twice), so the budget always holds.
    """
    order = sorted(range(len(chunks)), key=lambda i: (-chunks[i].score, i))
    groups: list[_Group] = []
    costs: list[int] = []
    used = 0
    seen: set[str] = set()
    for i in order:
        c = chunks[i]
        if c.chunk_id in seen or c.token_count > max_tokens:
            continue
        key = (c.document_id, c.page, c.section_path)
        joined = [
            g
            for g in groups
            if g.key == key and any(_neighbours(c, m, page_text) for m in g.members)
        ]
        members = [c] + [m for g in joined for m in g.members]
        trial = _Group(key, members, min([i] + [g.first_seen for g in joined]))
        cost = _cost(trial, page_text, count_tokens)
        old = sum(costs[_index(groups, g)] for g in joined)
        if used - old + cost > max_tokens:
            continue
        for g in joined:
            j = _index(groups, g)
            del groups[j], costs[j]
        groups.append(trial)
        costs.append(cost)
        used += cost - old
        seen.add(c.chunk_id)
    ranked = sorted(
        zip(groups, costs, strict=True), key=lambda gc: (-gc[0].score, gc[0].first_seen)
    )
    return [_source(g, cost, page_text) for g, cost in ranked]


def _index(groups: list[_Group], group: _Group) -> int:
    return next(i for i, g in enumerate(groups) if g is group)


def _neighbours(a: PackCandidate, b: PackCandidate, page_text: PageText | None) -> bool:
    touching = a.char_start <= b.char_end and b.char_start <= a.char_end
    return touching or (abs(a.ordinal - b.ordinal) == 1 and page_text is not None)


def _spans(members: Sequence[PackCandidate]) -> list[PackCandidate]:
    return sorted(members, key=lambda m: (m.char_start, m.char_end, m.ordinal))


def _text(group: _Group, page_text: PageText | None) -> str:
    members = _spans(group.members)
    start = members[0].char_start
    end = max(m.char_end for m in members)
    if page_text is not None:
        page = page_text(group.key[0], group.key[1])
        for m in members:
            if page[m.char_start : m.char_end] != m.text:
                raise ValueError(
                    f"chunk {m.chunk_id} is not the page text at [{m.char_start}:{m.char_end}]"
                )
        return page[start:end]
    # Stitch from the members' own texts: without page text, groups only ever hold
    # touching or overlapping spans, so there is no gap to fill.
    out = members[0].text
    reached = members[0].char_end
    for m in members[1:]:
        if m.char_end > reached:
            out += m.text[reached - m.char_start :]
            reached = m.char_end
    return out


def _cost(group: _Group, page_text: PageText | None, count_tokens: TokenCounter | None) -> int:
    if len(group.members) == 1 and count_tokens is None:
        return group.members[0].token_count
    if count_tokens is not None:
        return count_tokens(_text(group, page_text))
    gap_chars = 0
    members = _spans(group.members)
    reached = members[0].char_end
    page = page_text(group.key[0], group.key[1]) if page_text is not None else ""
    for m in members[1:]:
        if m.char_start > reached:
            gap_chars += sum(not ch.isspace() for ch in page[reached : m.char_start])
        reached = max(reached, m.char_end)
    return sum(m.token_count for m in group.members) + gap_chars


def _source(group: _Group, cost: int, page_text: PageText | None) -> PackedSource:
    members = _spans(group.members)
    document_id, page, section_path = group.key
    return PackedSource(
        document_id=document_id,
        page=page,
        section_path=section_path,
        chunk_ids=tuple(m.chunk_id for m in members),
        text=_text(group, page_text),
        char_start=members[0].char_start,
        char_end=max(m.char_end for m in members),
        token_count=cost,
        score=group.score,
    )
