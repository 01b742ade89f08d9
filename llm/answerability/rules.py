"""The offline answerability judge: no model, only what a question demands of its answer.

The best evidence is the source sentences that share the most of the question's content
words (within ``NEAR_BEST`` of the best share). The sources answer when one of them
meets all three demands the question makes:

- **numbers**: every number in the question ("in 1950", "two", 二十) is in that
  sentence's source. A question about another year is another question.
- **negation**: a negated question ("Who did *not* sign the treaty?") needs a negated
  or restricting ("only", "except") sentence; one about who signed does not answer it.
- **answer type**: "what year" / "which century" / 哪一年 needs a date, a number the
  question does not already hold, or an ordinal. (Not a bare "when", which in a
  handbook asks for a condition as often; nor "how many": the number is often in the
  table row under the header that matched.)
- **antonyms**: a question about the "largest" city is not answered by a sentence
  about the "smallest" one (a sentence with the antonym and without the word, in any
  regular form: "fall" asked, "rises" said).

Each demand is a refusal on positive evidence only: a question the sources share no word
with (a paraphrase, another language) is left to the other gates (retrieval's evidence,
the extractive backend's support floor, the model's own not-found reply).

Measured on SQuAD 2.0 (8 dev articles, ``lantern eval qa --squad``, README "Knowing
when the answer is not there"): the demands catch a fraction of the adversarial
unanswerable questions at little cost to the answerable ones; most unanswerables swap
an entity or use an antonym, which words alone cannot tell from a paraphrase (the
``reader`` judge can).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llm.answerability.base import ANSWERABLE, Verdict
from llm.base import Source
from llm.language import Language
from llm.support import SourceText, Tokens, text_tokens

#: Sentences sharing at least this share of the best sentence's question words are
#: "the best evidence".
NEAR_BEST = 0.75

# Questions that ask for a date by name ("what year"); not a bare "when", which in a
# handbook asks for a condition as often ("When is a fit note required?").
_WHEN = re.compile(
    r"\b(?:what|which)\s+(?:year|years|century|decade|month|date)\b|哪一?年|哪个月|哪天",
    re.IGNORECASE,
)
_DATE_WORD = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|century|centuries|decade|spring|summer|autumn|fall|winter|today|yesterday|"
    r"ago)\b|\d{3,4}s\b|[年月日世纪]",
    re.IGNORECASE,
)
# Ordinals answer "how many" and "what date" too: "the 8th day", "the third week".
_ORDINAL = re.compile(
    r"\b\d+(?:st|nd|rd|th)\b|\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|"
    r"ninth|tenth|twelfth|twentieth|hundredth)\b|第[〇零一二三四五六七八九十百\d]+",
    re.IGNORECASE,
)


# Antonym pairs SQuAD 2.0's writers swap into questions (English; lower case, as written).
_ANTONYM_PAIRS = """
first last|largest smallest|biggest smallest|most least|before after|increase decrease|
increased decreased|north south|east west|early late|earliest latest|minimum maximum|
higher lower|highest lowest|won lost|rise fall|major minor|begin end|start end|more less|
longer shorter|longest shortest|larger smaller|older younger|oldest youngest|strong weak|
stronger weaker|success failure|successful unsuccessful|positive negative|public private|
legal illegal|accept reject|accepted rejected|allowed banned|win lose|best worst|
better worse|inside outside|upper lower|top bottom|ancient modern|rich poor|wealthy poor|
male female|men women|support oppose|supported opposed|agree disagree|open closed|
internal external|import export|imports exports|gain loss|direct indirect|cheap expensive|
faster slower|above below|allies enemies|victory defeat|built destroyed|entered left|
birth death|born died|buy sell|bought sold|lend borrow|added removed|included excluded|
hired fired|raised lowered|domestic foreign|majority minority|full empty|peace war
"""
ANTONYMS: dict[str, frozenset[str]] = {}
for _pair in _ANTONYM_PAIRS.replace("\n", "").split("|"):
    _a, _b = _pair.split()
    ANTONYMS[_a] = ANTONYMS.get(_a, frozenset()) | {_b}
    ANTONYMS[_b] = ANTONYMS.get(_b, frozenset()) | {_a}
_WORDS = re.compile(r"[^\W\d_]+")


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORDS.findall(text.casefold()))


@dataclass(frozen=True)
class _Candidate:
    share: float
    text: str
    tokens: Tokens
    source_numbers: frozenset[str]
    source_text: str


class RulesJudge:
    name = "rules"

    def __init__(self, *, near_best: float = NEAR_BEST) -> None:
        self.near_best = near_best

    def judge(self, question: str, sources: Sequence[Source], *, language: Language) -> Verdict:
        q = text_tokens(question)
        if not q.words or not sources:
            return ANSWERABLE
        candidates = list(_candidates(q, sources))
        best = max((c.share for c in candidates), default=0.0)
        if best == 0.0:
            return Verdict(True, 0.0)  # nothing to judge by: the other gates decide
        near = sorted(
            (c for c in candidates if c.share >= self.near_best * best),
            key=lambda c: c.share,
            reverse=True,
        )
        for c in near:
            if not _unmet(question, q, c):
                return Verdict(True, c.share, evidence=c.text)
        return Verdict(False, best, reason=_unmet(question, q, near[0]), evidence=near[0].text)


def _candidates(q: Tokens, sources: Sequence[Source]) -> list[_Candidate]:
    out = []
    for source in sources:
        index = SourceText(source.text)
        numbers = frozenset().union(*(t.numbers for _, _, t in index.sentences))
        for a, b, toks in index.sentences:
            shared = len(q.words & toks.words)
            if shared:
                out.append(
                    _Candidate(shared / len(q.words), source.text[a:b], toks, numbers, source.text)
                )
    return out


# A sentence that restricts says what is not allowed without a "not": "you may only
# install apps from the catalogue" answers "Can I install an app that isn't in it?"
_RESTRICTS = re.compile(
    r"\b(?:only|except|unless|prohibited|forbidden|banned|excluded|instead)\b|只|仅|禁止|除",
    re.IGNORECASE,
)


def _unmet(question: str, q: Tokens, c: _Candidate) -> str:
    """Which demand of the question sentence ``c`` fails ("" when it meets them all)."""
    missing = sorted(q.numbers - c.source_numbers)
    if missing:
        return f"the question's number {missing[0]} is in none of the best-matching sources"
    if q.negated and not (c.tokens.negated or _RESTRICTS.search(c.text)):
        return "the question is negated and the best-matching passages are not"
    dated = c.tokens.numbers - q.numbers or _ORDINAL.search(c.text) or _DATE_WORD.search(c.text)
    if _WHEN.search(question) and not dated:
        return "the question asks for a date and the best-matching passages give none"
    said = _words(c.text)
    bound = _bound(question, c)
    if bound:
        return bound
    for word in sorted(_words(question) - said):
        for base in _bases(word):
            if _forms(base) & said:
                break  # "rise" asked, "rises" said
            opposite = sorted(set().union(*map(_forms, ANTONYMS.get(base, ()))) & said)
            if opposite:
                return f"the question says {word!r}, the best-matching passages say {opposite[0]!r}"
    return ""


# A limit asked the other way round: "the minimum allowance" against "up to £400".
_BOUNDS = {
    "minimum": (
        re.compile(r"\b(?:up to|at most|no more than|maximum|max)\b", re.IGNORECASE),
        re.compile(r"\b(?:minimum|min|at least|no less than|from)\b", re.IGNORECASE),
    ),
    "maximum": (
        re.compile(r"\b(?:at least|no less than|minimum)\b", re.IGNORECASE),
        re.compile(r"\b(?:maximum|max|up to|at most|no more than|limit|limited)\b", re.IGNORECASE),
    ),
}


def _bound(question: str, c: _Candidate) -> str:
    """The question asks for a minimum and the sentence's source gives a maximum (or the
    other way round), the sentence no minimum (a heading alone would meet it)."""
    asked = _words(question)
    for word, (other, same) in _BOUNDS.items():
        said = other.search(c.source_text) if word in asked else None
        if said and not same.search(c.text):
            return f"the question asks for the {word}, the best-matching passages say {said[0]!r}"
    return ""


_SUFFIXES = ("s", "es", "d", "ed", "ing")


def _bases(word: str) -> list[str]:
    """``word`` and what it is with a regular English ending taken off ("rises": rise)."""
    return [word] + [
        word[: -len(s)] for s in _SUFFIXES if word.endswith(s) and len(word) > len(s) + 2
    ]


def _forms(word: str) -> set[str]:
    """``word`` with the regular English endings ("fall": falls, falled, falling)."""
    return {word} | {word + s for s in _SUFFIXES}
