"""The offline answerability judge: no model, only what a question demands of its answer.

The best evidence is the source sentences that share the most of the question's content
words (within ``NEAR_BEST`` of the best share). The sources answer when one of them
meets all three demands the question makes:

- **numbers**: every number in the question ("in 1950", "two", 二十) is in that
  sentence's source. A question about another year is another question.
- **negation**: a negated question ("Who did *not* sign the treaty?") needs a negated
  sentence; a sentence about who signed does not answer it.
- **answer type**: "when" / "what year" needs a date or number the question does not
  already hold; "how many" / "how much" / "what percentage" / 多少 needs a number.

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

_WHEN = re.compile(
    r"^\W*when\b|\b(?:what|which)\s+(?:year|years|century|decade|month|day|date|time)\b"
    r"|什么时候|哪一?年|何时|哪天",
    re.IGNORECASE,
)
_COUNT = re.compile(
    r"\bhow\s+(?:many|much)\b|\bwhat\s+(?:percentage|percent|proportion|number|amount)\b"
    r"|多少|几[个年岁次位种名天]",
    re.IGNORECASE,
)
_DATE_WORD = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|century|centuries|decade|spring|summer|autumn|fall|winter|today|yesterday|"
    r"ago)\b|\d{3,4}s\b|[年月日世纪]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Candidate:
    share: float
    text: str
    tokens: Tokens
    source_numbers: frozenset[str]


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
                out.append(_Candidate(shared / len(q.words), source.text[a:b], toks, numbers))
    return out


def _unmet(question: str, q: Tokens, c: _Candidate) -> str:
    """Which demand of the question sentence ``c`` fails ("" when it meets them all)."""
    missing = sorted(q.numbers - c.source_numbers)
    if missing:
        return f"the question's number {missing[0]} is in none of the best-matching sources"
    if q.negated and not c.tokens.negated:
        return "the question is negated and the best-matching passages are not"
    new_numbers = c.tokens.numbers - q.numbers
    if _COUNT.search(question) and not new_numbers:
        return "the question asks for a number and the best-matching passages give none"
    if _WHEN.search(question) and not new_numbers and not _DATE_WORD.search(c.text):
        return "the question asks when and the best-matching passages give no date"
    return ""
