"""Questions in, grounded answers with verified citations out.

condense (multi-turn) -> hybrid retrieval in the allowed collections -> abstain when
the evidence is weak -> pack the best chunks into the context budget -> prompt with
numbered sources -> stream from the chat model -> verify every [n] against its
source -> answer, citations and provenance.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.db.models import Chunk, Page
from app.services.search import SearchResult, SearchService
from llm.base import ChatMessage, ChatModel, ChatRequest, GenerationParams, Source
from llm.citations import Citation, verify
from llm.history import prune_history
from llm.language import detect_language
from llm.prompts import (
    PROMPT_VERSION,
    build_answer_messages,
    build_condense_messages,
    is_not_found,
    not_found_text,
    parse_condensed,
)
from retrieval.packing import PackCandidate, PackedSource, pack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerOptions:
    top_k: int = 8
    context_tokens: int = 1500
    history_tokens: int = 1000
    #: Below this cosine between the question and its best chunk, Lantern abstains.
    abstain_below: float = 0.15
    params: GenerationParams = field(default_factory=GenerationParams)


#: What the user is told when an answer did not finish normally.
FINISH_NOTICES: Mapping[str, str] = {
    "length": "The answer was cut at the token limit (LANTERN_LLM__MAX_TOKENS).",
    "timeout": "The model ran out of time; the answer may be incomplete.",
    "repetition": "The model started repeating itself; the answer was cut there.",
    "error": "The model server failed mid-answer; the answer may be incomplete.",
}
#: The whole answer when the model failed before writing anything.
FAILED_TEXT = "No answer: the language model failed before it could answer. Please try again."


@dataclass(frozen=True)
class Answer:
    question: str
    standalone_question: str
    text: str
    citations: tuple[Citation, ...]
    sources: tuple[Source, ...]
    abstained: bool
    dropped_markers: int
    unsupported: tuple[int, ...]
    finish_reason: str
    #: Everything needed to trace the answer: chunks (ids + hashes), model, prompt.
    provenance: Mapping[str, Any]
    timings: Mapping[str, float]

    @property
    def notice(self) -> str | None:
        """A sentence to show beside an answer that did not finish normally."""
        return FINISH_NOTICES.get(self.finish_reason)

    @property
    def incomplete(self) -> bool:
        """The model stopped on an error or a timeout, not at the end of its answer."""
        return self.finish_reason in ("error", "timeout")


@dataclass(frozen=True)
class AnswerEvent:
    """A text delta while the answer streams, then one final event with the Answer."""

    delta: str = ""
    answer: Answer | None = None


class AnswerService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        search: SearchService,
        chat_model: Callable[[], ChatModel],
        *,
        options: AnswerOptions | None = None,
        extractive: bool = False,
    ) -> None:
        self.sessions = sessions
        self.search = search
        self._chat_model = chat_model
        self.options = options or AnswerOptions()
        self.extractive = extractive
        #: Called with every finished answer (for metrics).
        self.on_answer: Callable[[Answer], None] | None = None

    def ask(
        self,
        question: str,
        *,
        collection_ids: Collection[str] | None = None,
        history: Sequence[ChatMessage] = (),
    ) -> Answer:
        for event in self.stream(question, collection_ids=collection_ids, history=history):
            if event.answer is not None:
                return event.answer
        raise AssertionError("the answer stream ended without an answer")

    def stream(
        self,
        question: str,
        *,
        collection_ids: Collection[str] | None = None,
        history: Sequence[ChatMessage] = (),
    ) -> Iterator[AnswerEvent]:
        # Not stored, but the tokenizer and the model cannot take a lone surrogate
        # either: the same refusal as for stored text.
        storable.check(question=question, history=[m.content for m in history])
        opts = self.options
        timings: dict[str, float] = {}
        started = time.perf_counter()
        lang = detect_language(question)
        history = prune_history(list(history), max_tokens=opts.history_tokens)

        t = time.perf_counter()
        standalone = self.condense(question, history)
        timings["condense_s"] = time.perf_counter() - t

        t = time.perf_counter()
        hits, evidence = self.search.search_with_evidence(
            standalone, k=opts.top_k, collection_ids=collection_ids
        )
        timings["retrieve_s"] = time.perf_counter() - t

        model = self._chat_model()
        if not hits or (evidence is not None and evidence < opts.abstain_below):
            text = not_found_text(lang)
            yield AnswerEvent(delta=text)
            yield AnswerEvent(
                answer=self._final(
                    question,
                    standalone,
                    text,
                    (),
                    (),
                    True,
                    0,
                    (),
                    "stop",
                    model,
                    hits,
                    evidence,
                    timings,
                    started,
                )
            )
            return

        sources = self.sources(hits)
        request = ChatRequest(
            messages=build_answer_messages(question, sources, history),
            question=standalone,
            sources=sources,
            params=opts.params,
        )
        t = time.perf_counter()
        parts: list[str] = []
        finish = "stop"
        support: float | None = None
        for event in model.stream(request):
            if event.done:
                if event.completion is not None:
                    finish = event.completion.finish_reason
                    support = event.completion.support
                    if event.completion.ttft_s is not None:
                        timings["ttft_s"] = event.completion.ttft_s
                break
            if event.delta:
                parts.append(event.delta)
                yield AnswerEvent(delta=event.delta)
        timings["generate_s"] = time.perf_counter() - t
        raw = "".join(parts).strip()
        if not raw and finish in ("error", "timeout"):
            # Nothing to verify: say so rather than return an empty answer.
            raw = FAILED_TEXT
            yield AnswerEvent(delta=raw)
        checked = verify(raw, sources)
        abstained = is_not_found(raw)
        yield AnswerEvent(
            answer=self._final(
                question,
                standalone,
                checked.text,
                checked.citations,
                tuple(sources),
                abstained,
                checked.dropped_markers,
                checked.unsupported,
                finish,
                model,
                hits,
                evidence,
                timings,
                started,
                support=support,
            )
        )

    # -- steps ---------------------------------------------------------------------

    def condense(self, question: str, history: Sequence[ChatMessage]) -> str:
        """A follow-up rewritten as a standalone query. Without a generative model the
        previous question is prepended to what reads as a follow-up ("and for
        managers?", "how long does it last?"); a new question is searched as asked."""
        previous = [m.content for m in history if m.role == "user"]
        if not previous:
            return question
        if self.extractive:
            return f"{previous[-1]} {question}" if is_follow_up(question) else question
        request = ChatRequest(
            messages=build_condense_messages(history, question),
            question=question,
            params=GenerationParams(max_tokens=96, temperature=0.0, timeout_s=30),
        )
        try:
            out = self._chat_model().complete(request).text
        except Exception:  # a failed rewrite must not fail the answer
            log.warning("could not condense the follow-up; searching with it as asked")
            return question
        return parse_condensed(out, question)

    def sources(self, hits: Sequence[SearchResult]) -> list[Source]:
        """Pack the hits into the context budget, merging neighbours of one section."""
        pages = self._page_texts(hits)
        candidates = [
            PackCandidate(
                chunk_id=h.chunk_id,
                document_id=h.document_id,
                ordinal=h.ordinal,
                page=h.page,
                section_path=h.section_path,
                text=h.text,
                char_start=h.char_start,
                char_end=h.char_end,
                token_count=h.token_count,
                score=h.score,
            )
            for h in hits
        ]
        by_chunk = {h.chunk_id: h for h in hits}

        def page_text(document_id: str, page: int | None) -> str:
            # Formats without real pages keep their whole text as page 1.
            return pages.get((document_id, page or 1), "")

        packed: list[PackedSource] = pack(
            candidates, max_tokens=self.options.context_tokens, page_text=page_text
        )
        out: list[Source] = []
        for n, p in enumerate(packed, 1):
            first = by_chunk[p.chunk_ids[0]]
            out.append(
                Source(
                    n=n,
                    chunk_id=p.chunk_ids[0],
                    document_id=p.document_id,
                    title=first.title or first.document_name,
                    page=p.page,
                    text=p.text,
                    char_start=p.char_start,
                )
            )
        return out

    def _page_texts(self, hits: Sequence[SearchResult]) -> dict[tuple[str, int], str]:
        """Text of every page the hits are on, so packing can merge neighbours exactly."""
        if not hits:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Page.document_id, Page.number, Page.text)
                .join(Chunk, (Page.document_id == Chunk.document_id) & (Page.number == Chunk.page))
                .where(Chunk.id.in_([h.chunk_id for h in hits]))
            ).all()
        return {(doc, number): text for doc, number, text in rows}

    def _final(
        self,
        question: str,
        standalone: str,
        text: str,
        citations: tuple[Citation, ...],
        sources: tuple[Source, ...],
        abstained: bool,
        dropped: int,
        unsupported: tuple[int, ...],
        finish: str,
        model: ChatModel,
        hits: Sequence[SearchResult],
        evidence: float | None,
        timings: dict[str, float],
        started: float,
        *,
        support: float | None = None,
    ) -> Answer:
        timings["total_s"] = time.perf_counter() - started
        hashes = self._content_hashes([h.chunk_id for h in hits])
        provenance = {
            "model": getattr(model, "name", type(model).__name__),
            "prompt_version": PROMPT_VERSION,
            "retrieved": [
                {"chunk_id": h.chunk_id, "content_hash": hashes.get(h.chunk_id), "score": h.score}
                for h in hits
            ],
            "evidence": None if evidence is None else round(evidence, 4),
            "support": support,
        }
        answer = Answer(
            question=question,
            standalone_question=standalone,
            text=text,
            citations=citations,
            sources=sources,
            abstained=abstained,
            dropped_markers=dropped,
            unsupported=unsupported,
            finish_reason=finish,
            provenance=provenance,
            timings={k: round(v, 4) for k, v in timings.items()},
        )
        if self.on_answer is not None:
            self.on_answer(answer)
        return answer

    def _content_hashes(self, chunk_ids: list[str]) -> dict[str, str]:
        if not chunk_ids:
            return {}
        with self.sessions() as s:
            rows = s.execute(
                select(Chunk.id, Chunk.content_hash).where(Chunk.id.in_(chunk_ids))
            ).all()
        return {str(row[0]): str(row[1]) for row in rows}


_FOLLOW_UP_START = re.compile(
    r"^\s*(?:(?:and|or|but|also|then|so|what about|how about|what if|same for)\b"
    r"|那么|那|还有|而且|另外|如果)|呢[？?]?\s*$",
    re.IGNORECASE,
)
_REFERRING = re.compile(
    r"\b(?:it|its|they|them|their|this|that|these|those|there|he|she|his|her|one|ones)\b"
    r"|它|他们|她们|这个|那个|这些|那些",
    re.IGNORECASE,
)


def is_follow_up(question: str) -> bool:
    """Short and starting like a continuation, or leaning on a pronoun for its subject."""
    words = question.split()
    if len(words) > 12:
        return False
    return bool(_FOLLOW_UP_START.search(question)) or (
        len(words) <= 8 and bool(_REFERRING.search(question))
    )
