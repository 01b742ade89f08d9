"""Citation markers in a model's answer, checked against the text of the sources.

The model writes ``[n]`` after a claim. ``verify`` keeps a citation only where
that claim is found in source n: verbatim (case, width, quotes and line breaks
aside), or else as the source sentence that holds most of the claim's words.
Either way the quote returned is copied out of the source text, never taken
from the answer: ``text[char_start:char_end] == quote`` always holds, so a user
who opens the source finds exactly the quoted words.

A claim is the answer text a marker follows, back to the previous sentence end
or marker. How support is found, and the thresholds, are in ``llm.support``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from llm.base import Source
from llm.support import MIN_OVERLAP, SourceText, claim_key, support

__all__ = [
    "MIN_OVERLAP",
    "Citation",
    "Marker",
    "VerifiedAnswer",
    "parse_markers",
    "strip_markers",
    "verify",
]
#: ``[1-30]`` expands to every number only up to this width; wider ranges keep their ends.
MAX_RANGE = 20

# ---------------------------------------------------------------- markers

_NUM = r"[0-9０-９]{1,3}"
_DASH = r"\s*[-–—~～]\s*"
_COMMA = r"\s*[,，、;；]\s*"
_ITEM = rf"{_NUM}(?:{_DASH}{_NUM})?"
# "[1]", "[1, 3]", "[1-3]", "[Source 2]", "【1】", "［１］"; not "[1](url)", a Markdown link.
_MARKER = re.compile(
    rf"[\[［【]\s*(?:(?:sources?|来源|资料)\s*[:：]?\s*)?"
    rf"(?P<items>{_ITEM}(?:{_COMMA}{_ITEM})*)\s*[\]］】](?!\()",
    re.IGNORECASE,
)
# Brackets inside code are indexing, not citations: a[1].
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)


@dataclass(frozen=True)
class Marker:
    """One cited number; ``start:end`` is the whole bracket, shared by ``[1, 3]``'s two markers."""

    n: int
    start: int
    end: int


@dataclass(frozen=True)
class _Group:
    start: int
    end: int
    numbers: tuple[int, ...]
    brackets: tuple[str, str]


def _numbers(items: str) -> tuple[int, ...]:
    out: dict[int, None] = {}
    for item in re.split(_COMMA, items):
        ends = [int(x) for x in re.split(_DASH, item)]
        lo, hi = min(ends), max(ends)
        out.update(dict.fromkeys(range(lo, hi + 1) if hi - lo <= MAX_RANGE else (lo, hi)))
    return tuple(out)


def _groups(answer: str) -> list[_Group]:
    code = [m.span() for m in _CODE.finditer(answer)]
    return [
        _Group(m.start(), m.end(), _numbers(m["items"]), (m[0][0], m[0][-1]))
        for m in _MARKER.finditer(answer)
        if not any(a <= m.start() < b for a, b in code)
    ]


def parse_markers(answer: str) -> list[Marker]:
    """Every cited number in order of appearance: ``[1][2]``, ``[1, 3]``, ``[1-3]``, ``【1】``."""
    return [Marker(n, g.start, g.end) for g in _groups(answer) for n in g.numbers]


def _rewrite(answer: str, groups: Sequence[_Group], keep: Sequence[tuple[int, ...]]) -> str:
    """``answer`` with each group cut down to ``keep``; an emptied group goes with its space."""
    out = ""
    pos = 0
    for g, numbers in zip(groups, keep, strict=True):
        if numbers == g.numbers:
            continue
        out += answer[pos : g.start]
        pos = g.end
        if numbers:
            out += f"{g.brackets[0]}{', '.join(map(str, numbers))}{g.brackets[1]}"
            continue
        line_start = answer.rfind("\n", 0, g.start) + 1
        if not _MARKER.sub("", answer[line_start : g.start]).strip():
            rest = answer[g.end :]
            pos += len(rest) - len(rest.lstrip(" \t"))  # "[7] Foo" -> "Foo"
        elif not (nxt := answer[g.end : g.end + 1]).isalnum() and nxt not in "[［【(（":
            out = out.rstrip(" \t")  # "foo [7]." -> "foo."
    return out + answer[pos:]


def strip_markers(answer: str) -> str:
    """``answer`` without any citation markers (for showing an old answer to the model)."""
    groups = _groups(answer)
    return _rewrite(answer, groups, [() for _ in groups])


# ---------------------------------------------------------------- claims in the answer

# Sentence ends in the answer (markers already blanked out, so "B.[1]" reads "B.   ").
_ANSWER_BREAK = re.compile(r"[.!?](?=[\s\"'”’)]|$)|[。！？；;…]|\n")
_HAS_WORD = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class _Run:
    """Markers next to each other ("[1][2]", "[1] [3]"): they cite the same claim."""

    start: int
    end: int
    groups: tuple[int, ...]


def _runs(answer: str, groups: Sequence[_Group]) -> list[_Run]:
    runs: list[_Run] = []
    for i, g in enumerate(groups):
        if runs and not answer[runs[-1].end : g.start].strip():
            runs[-1] = _Run(runs[-1].start, g.end, (*runs[-1].groups, i))
        else:
            runs.append(_Run(g.start, g.end, (i,)))
    return runs


def _claims(masked: str, runs: Sequence[_Run]) -> list[str]:
    """The answer text each run of markers vouches for.

    Normally the text before the markers, back to the previous sentence end or
    marker ("A is B [1]."). A marker with nothing before it in its sentence
    takes the previous sentence ("A is B. [1]") unless that one has markers of
    its own and the following text has none ("A [1]. [2] C is D.").
    """
    ends = [m.end() for m in _ANSWER_BREAK.finditer(masked)]
    starts = [0, *ends]
    segments = [(a, b) for a, b in zip(starts, [*ends, len(masked)], strict=True) if a < b]
    seg_starts = [a for a, _ in segments]

    def words(a: int, b: int) -> bool:
        return bool(_HAS_WORD.search(masked, a, b))

    out: list[str] = []
    for k, run in enumerate(runs):
        others = [r.start for j, r in enumerate(runs) if j != k]

        def free(a: int, b: int, others: list[int] = others) -> bool:
            return not any(a <= x < b for x in others)

        i = max(bisect_right(seg_starts, run.start) - 1, 0)
        seg_start, seg_end = segments[i] if segments else (0, 0)
        lo = max(seg_start, runs[k - 1].end if k else 0)
        if words(lo, run.start):
            out.append(masked[lo : run.start])
            continue
        back = next(((a, b) for a, b in reversed(segments[:i]) if words(a, b)), None)
        forward = (run.end, max(seg_end, run.end)) if words(run.end, seg_end) else None
        ranked = [c for c in (back, forward) if c and free(*c)] + [c for c in (back, forward) if c]
        out.append(masked[ranked[0][0] : ranked[0][1]] if ranked else "")
    return out


# ---------------------------------------------------------------- verify


@dataclass(frozen=True)
class Citation:
    """A checked citation: ``quote`` is ``text[char_start:char_end]`` of the cited text.

    ``origin`` says which text: ``"chunk"`` is the source's own text (what the model
    saw), ``"page"`` the page text given to ``verify``, used when the chunk had no
    support. ``score`` is 1.0 for a verbatim match, else the overlap.
    """

    n: int
    chunk_id: str
    document_id: str
    title: str
    page: int | None
    quote: str
    char_start: int
    char_end: int
    score: float
    exact: bool
    origin: Literal["chunk", "page"] = "chunk"
    #: The cited text was read by OCR from an image of its page.
    ocr: bool = False


@dataclass(frozen=True)
class VerifiedAnswer:
    """The answer with markers to no source removed, and the citations that held up.

    ``dropped_markers`` counts the numbers cited that match no source.
    ``unsupported`` lists, in order of first citation, the sources cited for a
    claim they do not support; no citation is returned for that claim (a source
    cited for two claims can be in both lists).
    """

    text: str
    citations: tuple[Citation, ...]
    dropped_markers: int
    unsupported: tuple[int, ...]


def _mask(answer: str, groups: Sequence[_Group]) -> str:
    chars = list(answer)
    for g in groups:
        chars[g.start : g.end] = " " * (g.end - g.start)
    return "".join(chars)


def verify(
    answer: str,
    sources: Sequence[Source],
    *,
    page_texts: Mapping[str, str] | None = None,
    min_overlap: float = MIN_OVERLAP,
    drop_unsupported: bool = False,
) -> VerifiedAnswer:
    """Check every ``[n]`` in ``answer`` against source n's text.

    ``page_texts`` maps a chunk id to the text of its page: a claim the chunk does
    not support is looked for there too (the chunk may have been cut to fit the
    prompt), and such a citation has ``origin="page"`` with offsets into the page.
    Markers of unsupported claims stay in the text unless ``drop_unsupported``.
    """
    by_n = {s.n: s for s in sources}
    groups = _groups(answer)
    runs = _runs(answer, groups)
    claims = _claims(_mask(answer, groups), runs)
    indexes: dict[str, SourceText] = {}
    citations: dict[tuple[int, str, int, int], Citation] = {}
    unsupported: dict[int, None] = {}
    keep: list[tuple[int, ...]] = [() for _ in groups]
    dropped = 0
    for run, raw_claim in zip(runs, claims, strict=True):
        claim = claim_key(raw_claim)
        checked: dict[int, Citation | None] = {}
        for gi in run.groups:
            kept: list[int] = []
            for n in groups[gi].numbers:
                source = by_n.get(n)
                if source is None:
                    dropped += 1
                    continue
                if n not in checked:
                    checked[n] = _cite(claim, source, page_texts or {}, indexes, min_overlap)
                cite = checked[n]
                if cite is None:
                    unsupported[n] = None
                    if drop_unsupported:
                        continue
                else:
                    citations.setdefault((n, cite.origin, cite.char_start, cite.char_end), cite)
                kept.append(n)
            keep[gi] = tuple(kept)
    return VerifiedAnswer(
        text=_rewrite(answer, groups, keep),
        citations=tuple(citations.values()),
        dropped_markers=dropped,
        unsupported=tuple(unsupported),
    )


def _cite(
    claim: str,
    source: Source,
    page_texts: Mapping[str, str],
    indexes: dict[str, SourceText],
    min_overlap: float,
) -> Citation | None:
    texts: list[tuple[Literal["chunk", "page"], str]] = [("chunk", source.text)]
    if (page := page_texts.get(source.chunk_id)) is not None:
        texts.append(("page", page))
    for origin, text in texts:
        if text not in indexes:
            indexes[text] = SourceText(text)
        index = indexes[text]
        span = support(claim, index, min_overlap=min_overlap)
        if span is None:
            continue
        quote = text[span.start : span.end]
        assert quote.strip() == quote != "", "a quote is a trimmed, non-empty source span"
        return Citation(
            n=source.n,
            chunk_id=source.chunk_id,
            document_id=source.document_id,
            title=source.title,
            page=source.page,
            quote=quote,
            char_start=span.start,
            char_end=span.end,
            score=round(span.score, 3),
            exact=span.exact,
            origin=origin,
            ocr=source.ocr,
        )
    return None
