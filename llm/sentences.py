"""Sentences of source text, as spans of the original string.

One splitter for the two readers of sources: the extractive backend (which
quotes whole sentences) and citation checking (which looks for a claim's
supporting sentence). A sentence ends at . ! ? followed by white space (not
after an abbreviation such as "ext." or "e.g."), at 。！？；, at a blank line, or
before a list item. A single line break is not an end: PDF text breaks lines
mid-sentence.
"""

from __future__ import annotations

import re

# Abbreviations that end in a full stop inside a sentence ("ext. 4357", "e.g. a VPN").
# Not "no.", "min." or "max.": as often the last word of a sentence as abbreviations.
# Python's look-behinds are fixed-width, so one per length.
_ABBREVIATIONS = (
    "ext",
    "e.g",
    "i.e",
    "approx",
    "incl",
    "excl",
    "tel",
    "fig",
    "vs",
    "cf",
    "mr",
    "mrs",
    "ms",
    "dr",
    "dept",
    "ref",
)
_NOT_AFTER = "".join(f"(?<![^\\w.]{re.escape(a)})(?<!^{re.escape(a)})" for a in _ABBREVIATIONS)
# Nor the number of a numbered list item ("1. Install the app").
_NOT_LIST_NUMBER = r"(?<!^\d)(?<!^\d\d)(?<!\n\d)(?<!\n\d\d)"
_SENTENCE_END = re.compile(
    f"(?i:{_NOT_AFTER}){_NOT_LIST_NUMBER}"
    r"[.!?][\"'”’)\]]*(?=\s)|[。！？；]+[”’」』）]*"
    r"|\n[ \t]*\n|\n(?=[ \t]*(?:[-*•·▪]|\d{1,2}[.)])\s)"
)
BULLET = re.compile(r"^(?:[-*•·▪]|\d{1,2}[.)、])\s+")
_HAS_WORD = re.compile(r"[^\W_]")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``: edges stripped of white space and of
    a leading list bullet; pieces without a letter or digit are left out."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]:
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        lead += b.end() if (b := BULLET.match(piece[lead:])) else 0
        a, b_ = start + lead, start + len(piece.rstrip())
        if a < b_ and _HAS_WORD.search(text, a, b_):
            spans.append((a, b_))
        start = end
    return spans
