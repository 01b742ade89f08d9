"""Where in a source text a claim from an answer is supported, if anywhere.

First verbatim: both texts are normalised (case, width, accents, curly quotes,
dashes; whitespace and PDF line breaks; hyphenation at a line end) with a map
back to the original offsets, so the span returned is always a slice of the
original text. Failing that, the source sentence that holds the
largest share of the claim's content words.

Thresholds (tuned on the paraphrases and fabrications in
``tests/unit/test_citations.py``; a small hand-made set, so treat them as a start):

- ``MIN_OVERLAP = 0.45``: the score is the mean of two shares of the claim
  found in one source sentence: its content words (stemmed, stop words out;
  Han characters one by one) and its neighbouring word pairs (some word order:
  "managers can approve extra vacation days" shares words with "vacation
  requests must be approved by a manager", but no pairs). Honest paraphrases
  score 0.52-0.94; other claims about the same subject 0.1-0.43. Words alone
  could not separate the two (0.5-0.67 on both sides). The score is returned,
  so a stricter caller can filter on it.
- ``MIN_CLAIM_TOKENS = 2``: "Yes [1]" cannot be checked, and one shared word
  proves nothing.
- A non-verbatim match is refused when the claim has a number the span lacks
  ("40 days" against "25 days", 二十天 against 十五天), or a negation the span
  lacks ("do not need approval" against "must be approved").

Not caught: a claim that reuses the source's words to say something else
("unused vacation days expire at the end of the year" against "... can be
carried over until 31 March of the following year" scores 0.53), and a
paraphrase with few words in common ("connect through the VPN on public Wi-Fi"
scores 0.25 and is reported unsupported).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import pairwise

from llm.language import HAN, HAN_CHARS
from llm.sentences import BULLET, sentence_spans

MIN_OVERLAP = 0.45
MIN_CLAIM_TOKENS = 2

# ---------------------------------------------------------------- normalising text

_FOLD = str.maketrans(
    {
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‘’‚‛′", "'"),
        **dict.fromkeys("‐‑‒–—―−", "-"),
    }
)
_INVISIBLE = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")
# Characters written without spaces between them: Han, CJK punctuation, kana.
_WIDE = re.compile(f"[{HAN_CHARS}\u3000-\u30ff]")
# A word hyphenated across a line break in a PDF: "knowl-\nedge".
_HYPHENS = "-\u2010\u00ad"
_HYPHEN_BREAK = re.compile(rf"(?<=[^\W\d_])[{_HYPHENS}][ \t]*\r?\n[ \t]*(?=[^\W\d_])")


def _fold(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _normalise(text: str) -> tuple[str, list[int]]:
    """Comparable form of ``text`` and, per character of it, its index in ``text``.

    Case, width, accents, curly quotes and dashes are folded; runs of whitespace
    (line breaks included) become one space, or nothing between CJK characters;
    a line-end hyphen inside a word is dropped.
    """
    chars: list[str] = []
    pos: list[int] = []
    space_at = -1
    i = 0
    while i < len(text):
        c = text[i]
        if c in _HYPHENS and (m := _HYPHEN_BREAK.match(text, i)) and text[m.end()].islower():
            i = m.end()
            continue
        if c.isspace():
            space_at = i if space_at < 0 else space_at
        elif c not in _INVISIBLE and (folded := _fold(c)):
            if space_at >= 0 and chars and not (_WIDE.match(chars[-1]) or _WIDE.match(folded)):
                chars.append(" ")
                pos.append(space_at)
            space_at = -1
            chars.extend(folded)
            pos.extend([i] * len(folded))
        i += 1
    return "".join(chars), pos


# ---------------------------------------------------------------- tokens

_WORD = re.compile(f"[{HAN_CHARS}]|[^\\W_{HAN_CHARS}]+")
_STOPWORDS = frozenset(
    """
    a an the is are was were be been being am do does did of in on at to for from with by
    as and or but if then than that this these those it its there here so such can could may
    might must shall should will would has have had i you he she we they me my your our their
    his her them us what which who whom when where why how per also just only very into about
    over up out any each all some not no
    """.split()
)
_STOPCHARS = frozenset("的了是在和与及或也都就而之其")
# Spelled-out numbers count as the digits ("two weeks" == "2 weeks"). Not "one": a pronoun.
_NUMBER_WORDS = dict(
    zip(
        "zero two three four five six seven eight nine ten eleven twelve twenty thirty forty "
        "fifty sixty seventy eighty ninety hundred thousand".split(),
        "0 2 3 4 5 6 7 8 9 10 11 12 20 30 40 50 60 70 80 90 100 1000".split(),
        strict=True,
    )
)
# Chinese numerals; a lone 一 is mostly "a"/"one" inside words (一般, 统一), not a quantity.
_ZH_NUMBER = re.compile(
    r"[〇零一二三四五六七八九十百千万亿两]{2,}|[〇零二三四五六七八九十百千万亿两]"
)
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot|without)\b|n't\b|不|没|未(?!来)"
)


def _stem(word: str) -> str:
    """Crude suffix stripping: enough for "requests", "requested" and "request" to meet."""
    if word.endswith(("ies", "ied")) and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


@dataclass(frozen=True)
class Tokens:
    words: frozenset[str]  # stemmed content words; Han characters one by one
    pairs: frozenset[tuple[str, str]]  # neighbours among those, in order
    numbers: frozenset[str]
    negated: bool


def _tokens(norm: str) -> Tokens:
    seq: list[str] = []
    numbers = set(_ZH_NUMBER.findall(norm))
    for w in _WORD.findall(norm):
        if HAN.match(w):
            if w not in _STOPCHARS:
                seq.append(w)
        elif w.isdigit() or w in _NUMBER_WORDS:
            numbers.add(_NUMBER_WORDS.get(w, w))
            seq.append(_NUMBER_WORDS.get(w, w))
        elif w not in _STOPWORDS:
            seq.append(_stem(w))
    return Tokens(
        frozenset(seq),
        frozenset(pairwise(seq)),
        frozenset(numbers),
        bool(_NEGATION.search(norm)),
    )


def text_tokens(text: str) -> Tokens:
    """``text``'s comparable words, word pairs, numbers and whether it is negated."""
    return _tokens(_normalise(text)[0])


def _overlap(claim: Tokens, span: Tokens) -> float:
    """Mean of the shares of the claim's words and of its word pairs found in the span.

    Pairs keep some word order: "approve extra vacation days" shares words with
    "vacation requests must be approved" but no pairs.
    """
    if not claim.words:
        return 0.0
    words = len(claim.words & span.words) / len(claim.words)
    pairs = len(claim.pairs & span.pairs) / len(claim.pairs) if claim.pairs else words
    return (words + pairs) / 2


# ---------------------------------------------------------------- finding support

_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
# A clause after a comma starts with a connective the source sentence does not have.
_CONNECTIVE = re.compile(
    r"^(?:(?:and|but|also|while|whereas|so|plus|then)\s+|并且|而且|但是|同时|另外)"
)


@dataclass(frozen=True)
class Span:
    """Where a claim's support lies in a source text; ``exact`` for a verbatim occurrence."""

    start: int
    end: int
    score: float
    exact: bool


def _joined(left: str, right: str) -> bool:
    """Whether two characters are parts of one word (CJK characters never are)."""
    return left.isalnum() and right.isalnum() and not (_WIDE.match(left) or _WIDE.match(right))


class SourceText:
    """A source text, normalised and split into sentences once, to check many claims against."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.norm, self.pos = _normalise(text)
        self.sentences = [
            (a, b, _tokens(_normalise(text[a:b])[0])) for a, b in sentence_spans(text)
        ]

    def exact(self, claim: str) -> Span | None:
        i = self.norm.find(claim)
        while i >= 0:
            j = i + len(claim)
            # Whole words only: "art" is not verbatim in "start".
            cut_before = i > 0 and _joined(self.norm[i - 1], claim[0])
            cut_after = j < len(self.norm) and _joined(claim[-1], self.norm[j])
            if not (cut_before or cut_after):
                end = self.pos[j - 1] + 1
                while end < len(self.text) and unicodedata.combining(self.text[end]):
                    end += 1
                return Span(self.pos[i], end, 1.0, exact=True)
            i = self.norm.find(claim, i + 1)
        return None

    def closest(self, claim: Tokens, min_overlap: float) -> Span | None:
        best: tuple[float, int] | None = None
        found: Span | None = None
        for a, b, toks in self.sentences:
            if not claim.numbers <= toks.numbers or (claim.negated and not toks.negated):
                continue
            key = (_overlap(claim, toks), -len(toks.words))  # ties: the shorter sentence
            if key[0] >= min_overlap and (best is None or key > best):
                best, found = key, Span(a, b, key[0], exact=False)
        return found


def claim_key(raw: str) -> str:
    """The comparable form of a claim: normalised, without Markdown emphasis, list bullets
    or the punctuation at its ends."""
    raw = BULLET.sub("", raw.strip()).replace("*", "").replace("`", "")
    return _EDGES.sub("", _CONNECTIVE.sub("", _EDGES.sub("", _normalise(raw)[0])))


def find_support(
    claim: str, text: str | SourceText, *, min_overlap: float = MIN_OVERLAP
) -> Span | None:
    """The span of ``text`` that supports ``claim`` (answer words), or None.

    A verbatim occurrence scores 1.0; otherwise the best source sentence by
    overlap (see the module docstring), if at least ``min_overlap``.
    """
    index = text if isinstance(text, SourceText) else SourceText(text)
    return support(claim_key(claim), index, min_overlap=min_overlap)


def support(key: str, index: SourceText, *, min_overlap: float = MIN_OVERLAP) -> Span | None:
    """``find_support`` for a claim already passed through ``claim_key``."""
    tokens = _tokens(key)
    if len(tokens.words) < MIN_CLAIM_TOKENS:
        return None
    return index.exact(key) or index.closest(tokens, min_overlap)
