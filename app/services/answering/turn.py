"""The state of one question as it goes through the answer steps."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.services.search import SearchResult
from llm.answerability.base import Verdict
from llm.base import ChatMessage, Source
from llm.citations import VerifiedAnswer
from llm.language import Language

NO_REPLY = VerifiedAnswer(text="", citations=(), dropped_markers=0, unsupported=())


@dataclass(frozen=True)
class Turn:
    """One question on its way through the steps; each step returns a copy with its
    part filled in, so what a step needs is what it reads here."""

    question: str
    #: Detected once, from ``question``: the prompts, the not-found reply and the
    #: backend all follow it.
    language: Language
    #: Pruned to the history budget.
    history: tuple[ChatMessage, ...]
    #: ``time.perf_counter()`` when the question arrived.
    started: float
    #: The question as searched: a follow-up rewritten to stand on its own.
    standalone: str = ""
    hits: tuple[SearchResult, ...] = ()
    #: Cosine between the query and its closest chunk (None: no such signal).
    evidence: float | None = None
    #: The hits packed into the context budget, numbered as the prompt shows them.
    sources: tuple[Source, ...] = ()
    #: The answerability judge's verdict on those sources (None: no judge ran).
    verdict: Verdict | None = None
    judge: str | None = None
    #: The judge's verdict on the sources the model's reply cites, alone.
    cited_verdict: Verdict | None = None
    #: The model's reply with its citations checked, or the not-found reply.
    reply: VerifiedAnswer = NO_REPLY
    abstained: bool = False
    finish: str = "stop"
    #: The backend's own support for its reply, where it has one.
    support: float | None = None
    timings: Mapping[str, float] = field(default_factory=dict)

    def timed(self, step: str, since: float) -> dict[str, float]:
        """The timings, plus ``step`` taking from ``since`` until now."""
        return {**self.timings, step: time.perf_counter() - since}
