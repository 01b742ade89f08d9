"""Words broken at a line end ("re-" / "trieval") made whole again.

When a line ends in a hyphen and the next line goes on with the word, pdfium
joins the two lines and puts ``HYPHEN_MARK`` (U+FFFE; ``\\x02`` in some
builds) where the hyphen was. Left as a hyphen, "re-trieval" would never match
a search for "retrieval". Between two lowercase words (the first may be
capitalised: "Infor-" / "mation") the mark is dropped, unless the evidence
says the hyphen is part of a compound:

1. the document itself: the hyphenated form ("well-known") occurs elsewhere,
   within a line, more often than the joined form ("wellknown");
2. with no such evidence, a part of a longer compound ("state-of-the-" / "art")
   or a prefix that takes a hyphen ("self-", "non-", "co-", ...).

Anywhere else (digits, capitals inside a word as in "YYMMDDhhmm-hh", the end
of a line) the mark is a plain "-".
Hand-written: the libraries that dehyphenate (e.g. pyphen's dictionaries) say
where a word may break, not whether a given break was a compound's hyphen.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ingestion.parsers._pdf_layout import Line

HYPHEN_MARK = "\ufffe"

#: Prefixes written with a hyphen that a hyphenation algorithm would not break at
#: inside an ordinary word (so "pre-"/"re-"/"ex-" are not here: "previous", "example").
_COMPOUND_PREFIXES = frozenset({"self", "non", "co", "all", "well", "half", "cross", "quasi"})

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_BROKEN = re.compile(rf"([^\W\d_]+(?:-[^\W\d_]+)*){HYPHEN_MARK}([^\W\d_]+(?:-[^\W\d_]+)*)")


def word_counts(lines: Iterable[Line | None]) -> Counter[str]:
    """How often each word, and each two-part hyphenated form, occurs within a line."""
    text = "\n".join(line.text for line in lines if line is not None and not line.table)
    words = _WORD.findall(text.lower())
    counts = Counter(words)
    for word in words:
        if "-" in word:
            counts.update("-".join(pair) for pair in itertools.pairwise(word.split("-")))
    return counts


def mend_hyphens(pages: Sequence[Sequence[Line | None]]) -> list[list[Line | None]]:
    """The pages with every ``HYPHEN_MARK`` resolved (see the module docstring)."""
    marked = [line for lines in pages for line in lines if line and HYPHEN_MARK in line.text]
    if not marked:
        return [list(lines) for lines in pages]
    counts = word_counts(line for lines in pages for line in lines)
    return [
        [
            replace(line, text=mend(line.text, counts))
            if line is not None and HYPHEN_MARK in line.text
            else line
            for line in lines
        ]
        for lines in pages
    ]


def mend(text: str, counts: Counter[str]) -> str:
    """``text`` with its broken words joined or hyphenated."""

    def join(match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(2)
        before, after = head.rsplit("-", 1)[-1], tail.split("-", 1)[0]
        words = (before[1:] or before).islower() and after.islower()
        if words and not _is_compound(head, tail, counts):
            return head + tail
        return f"{head}-{tail}"

    return _BROKEN.sub(join, text).replace(HYPHEN_MARK, "-")


def _is_compound(head: str, tail: str, counts: Counter[str]) -> bool:
    before, after = head.rsplit("-", 1)[-1].lower(), tail.split("-", 1)[0].lower()
    hyphenated, joined = counts[f"{before}-{after}"], counts[before + after]
    if hyphenated != joined:
        return hyphenated > joined
    return "-" in head or "-" in tail or before in _COMPOUND_PREFIXES
