"""The answerability check: between retrieval and the answer, whether the sources found
actually answer the question, not just share its topic.

Retrieval finds chunks *about* a question; SQuAD 2.0's unanswerable questions show how
often that is not enough: "What year did the Normans *not* invade?" or "How many
soldiers died in 1950?" against a paragraph about the Normans' invasions in 1066.
A judge reads the question and the packed sources and returns a ``Verdict``; the answer
service says the not-found reply, without asking the model, when the verdict is no.
It runs before generation, so it works the same with every chat backend.

Judges (``llm.answerability.registry``): ``rules`` (offline, no model: the question's
numbers, negation and answer type must be met by the best-matching sentence) and
``reader`` (an extractive QA model trained on SQuAD 2.0, which scores "no answer"
against its best span).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llm.base import Source
from llm.language import Language


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    #: The judge's confidence that the sources answer (its own scale; higher: more).
    score: float
    #: Why not, in words a user can check (empty when answerable).
    reason: str = ""
    #: The passage the judge found to answer from, where it has one.
    evidence: str | None = None


ANSWERABLE = Verdict(True, 1.0)


class AnswerabilityJudge(Protocol):
    #: Names the judge in logs, /health and provenance (e.g. "rules", "reader:<model>").
    name: str

    def judge(self, question: str, sources: Sequence[Source], *, language: Language) -> Verdict:
        """Whether ``sources`` (best first) answer ``question``."""
        ...
