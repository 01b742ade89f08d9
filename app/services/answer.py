"""Questions in, grounded answers with verified citations out.

``AnswerService.stream`` runs the steps in order, each a method that takes the
question's ``Turn`` and returns it with its part filled in: condense (a follow-up
into a standalone query) -> retrieve (hybrid, in the allowed collections) -> check
the evidence (abstain when it is weak) -> pack the best chunks into the context
budget -> prompt with numbered sources -> generate (streamed) -> verify every [n]
against its source -> record the answer, citations and provenance. Between packing
and prompting, the answerability judge (``llm.answerability``), where one is set,
decides whether the sources really answer the question; when they do not, the reply
is the not-found one and the model is not asked. After a model's reply, the judge
reads the sources it cited, alone: a reply that quotes a passage which does not
answer (another year, the case without the "not") while another passage does gets a
caution beside it (it has streamed, so it is flagged, not withdrawn). The question's
language is detected once, at the start, and every step that needs it is told.

The model is the caller's choice (``ModelChoice``: a fine-tuned version picked by the
model router, or the base model) or, by default, the configured one; the provenance
names the version (``model_version``, None for the base model).

With an answer cache (``app.services.answering.cache``), a question already answered
whole for the same sources, conversation and model is served from it before any step
runs: its text streams as deltas, and the answer is the stored one with
``provenance["cache"] == "hit"``; every other answer says ``"miss"``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.db.repositories.chunks import ChunkRepository
from app.services.answering.cache import AnswerCache, answer_fields
from app.services.answering.condense import is_follow_up, standalone_query
from app.services.answering.sources import pack_sources
from app.services.answering.turn import Turn
from app.services.model_router import ModelChoice
from app.services.search import SearchService
from llm.answerability.base import AnswerabilityJudge, Verdict
from llm.base import ChatMessage, ChatModel, ChatRequest, GenerationParams, Source
from llm.citations import Citation, VerifiedAnswer, verify
from llm.errors import LLMError
from llm.history import prune_history
from llm.language import detect_language
from llm.prompts import PROMPT_VERSION, build_answer_messages, is_not_found, not_found_text

__all__ = [
    "FAILED_TEXT",
    "FINISH_NOTICES",
    "Answer",
    "AnswerEvent",
    "AnswerOptions",
    "AnswerService",
    "Turn",
    "is_follow_up",
]


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
    #: Why the passages the answer cites may not answer the question (None: they do,
    #: or no judge ran).
    caution: str | None = None

    @property
    def notice(self) -> str | None:
        """What to show beside an answer that did not finish normally, or whose cited
        passages may not answer the question."""
        notes = [n for n in (FINISH_NOTICES.get(self.finish_reason), self.caution) if n]
        return " ".join(notes) or None

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
        on_answer: Callable[[Answer], None] | None = None,
        on_error: Callable[[str | None, LLMError], None] | None = None,
        judge: AnswerabilityJudge | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        """``on_answer`` is called with every finished answer (served from the cache
        too), ``on_error`` with the version (None: the base model) and the error of
        every answer the model failed before it wrote anything (for metrics and the
        candidates' error rates). ``judge``: the answerability check (None: none);
        ``cache``: the answer cache (None: none)."""
        self.chunks = ChunkRepository(sessions)
        self.search = search
        self._chat_model = chat_model
        self.options = options or AnswerOptions()
        self.on_answer = on_answer
        self.on_error = on_error
        self.judge = judge
        self.cache = cache

    def ask(
        self,
        question: str,
        *,
        collection_ids: Collection[str] | None = None,
        history: Sequence[ChatMessage] = (),
        model: ModelChoice | None = None,
        cache: bool = True,
    ) -> Answer:
        events = self.stream(
            question, collection_ids=collection_ids, history=history, model=model, cache=cache
        )
        for event in events:
            if event.answer is not None:
                return event.answer
        raise AssertionError("the answer stream ended without an answer")

    def stream(
        self,
        question: str,
        *,
        collection_ids: Collection[str] | None = None,
        history: Sequence[ChatMessage] = (),
        model: ModelChoice | None = None,
        cache: bool = True,
    ) -> Iterator[AnswerEvent]:
        """Deltas, then the Answer. ``model``: who answers (None: the configured model);
        ``cache`` False: neither read nor fill the answer cache (evaluations)."""
        # Not stored, but the tokenizer and the model cannot take a lone surrogate
        # either: the same refusal as for stored text.
        storable.check(question=question, history=[m.content for m in history])
        started = time.perf_counter()
        turn = Turn(
            question=question,
            language=detect_language(question),
            history=tuple(prune_history(list(history), max_tokens=self.options.history_tokens)),
            started=started,
        )
        choice = model or ModelChoice(None, self._chat_model())
        key = None
        if cache and self.cache is not None:
            key = self.cache.key(
                question, history=turn.history, collection_ids=collection_ids, model=choice
            )
            entry = self.cache.get(key)
            if entry is not None:
                yield from self.replay(turn, entry)
                return
        try:
            turn = self.condense(turn, model=choice.model)
            turn = self.retrieve(turn, collection_ids=collection_ids)
            answer_it = self.has_evidence(turn)
            if answer_it:
                turn = self.check_answerable(self.pack(turn))
                answer_it = turn.verdict is None or turn.verdict.answerable
            if answer_it:
                request = self.prompt(turn)
                turn = yield from self.generate(turn, model=choice.model, request=request)
                turn = self.check_cited(turn)
            else:
                turn = self.not_found(turn)
                yield AnswerEvent(delta=turn.reply.text)
        except LLMError as e:
            if self.on_error is not None:
                self.on_error(choice.version, e)
            raise
        answer = self.record(turn, model=choice, cached=None if key is None else "miss")
        if key is not None and self.cache is not None:
            self.cache.put(key, answer)
        yield AnswerEvent(answer=answer)

    def replay(self, turn: Turn, entry: Mapping[str, Any]) -> Iterator[AnswerEvent]:
        """A cached answer as a fresh one streams: its text in word-sized deltas, then
        the answer (also handed to ``on_answer``)."""
        fields = answer_fields(entry)
        lookup_s = time.perf_counter() - turn.started
        for piece in _WORDS.findall(fields["text"]):
            yield AnswerEvent(delta=piece)
        answer = Answer(
            question=turn.question,
            # Without history the question is searched as asked.
            standalone_question=entry["standalone_question"] if turn.history else turn.question,
            **fields,
            timings={"cache_s": round(lookup_s, 4), **_total(turn)},
        )
        if self.on_answer is not None:
            self.on_answer(answer)
        yield AnswerEvent(answer=answer)

    # -- the steps, in order ---------------------------------------------------------

    def condense(self, turn: Turn, *, model: ChatModel) -> Turn:
        """The question as it will be searched: a follow-up made to stand on its own."""
        t = time.perf_counter()
        standalone = standalone_query(
            turn.question, history=turn.history, language=turn.language, model=model
        )
        return replace(turn, standalone=standalone, timings=turn.timed("condense_s", t))

    def retrieve(self, turn: Turn, *, collection_ids: Collection[str] | None) -> Turn:
        """The best chunks for the standalone query, and how close the closest is."""
        t = time.perf_counter()
        hits, evidence = self.search.search_with_evidence(
            turn.standalone, k=self.options.top_k, collection_ids=collection_ids
        )
        timings = turn.timed("retrieve_s", t)
        return replace(turn, hits=tuple(hits), evidence=evidence, timings=timings)

    def has_evidence(self, turn: Turn) -> bool:
        """Whether anything was found, close enough to the question to answer from."""
        weak = turn.evidence is not None and turn.evidence < self.options.abstain_below
        return bool(turn.hits) and not weak

    def not_found(self, turn: Turn) -> Turn:
        """The not-found reply in the question's language, without asking the model."""
        reply = VerifiedAnswer(
            text=not_found_text(turn.language), citations=(), dropped_markers=0, unsupported=()
        )
        return replace(turn, reply=reply, abstained=True)

    def pack(self, turn: Turn, *, max_tokens: int | None = None) -> Turn:
        """The hits that fit the context budget (``max_tokens``, else the configured
        one), as numbered sources."""
        pages = self.chunks.page_texts([h.chunk_id for h in turn.hits])
        budget = self.options.context_tokens if max_tokens is None else max_tokens
        sources = pack_sources(turn.hits, pages=pages, max_tokens=budget)
        return replace(turn, sources=tuple(sources))

    def check_answerable(self, turn: Turn) -> Turn:
        """The judge's verdict on whether the packed sources answer the question."""
        if self.judge is None or not turn.sources:
            return turn
        t = time.perf_counter()
        verdict = self.judge.judge(turn.standalone, turn.sources, language=turn.language)
        return replace(
            turn, verdict=verdict, judge=self.judge.name, timings=turn.timed("judge_s", t)
        )

    def prompt(self, turn: Turn) -> ChatRequest:
        """The request: the prompt for generative models, question and sources for all."""
        messages = build_answer_messages(
            turn.question, turn.sources, turn.history, language=turn.language
        )
        return ChatRequest(
            messages=messages,
            question=turn.standalone,
            sources=turn.sources,
            params=self.options.params,
            language=turn.language,
        )

    def generate(
        self, turn: Turn, *, model: ChatModel, request: ChatRequest
    ) -> Generator[AnswerEvent, None, Turn]:
        """The model's reply, streamed as deltas; the turn comes back with it verified."""
        t = time.perf_counter()
        parts: list[str] = []
        done = None
        for event in model.stream(request):
            if event.done:
                done = event.completion
                break
            if event.delta:
                parts.append(event.delta)
                yield AnswerEvent(delta=event.delta)
        timings = dict(turn.timings)
        if done is not None and done.ttft_s is not None:
            timings["ttft_s"] = done.ttft_s
        timings["generate_s"] = time.perf_counter() - t
        finish = "stop" if done is None else done.finish_reason
        raw = "".join(parts).strip()
        if not raw and finish in ("error", "timeout"):
            # Nothing to verify: say so rather than return an empty answer.
            raw = FAILED_TEXT
            yield AnswerEvent(delta=raw)
        support = None if done is None else done.support
        return self.verify(replace(turn, finish=finish, support=support, timings=timings), raw)

    def verify(self, turn: Turn, raw: str) -> Turn:
        """Every [n] of ``raw`` checked against source n; markers to no source dropped."""
        return replace(turn, reply=verify(raw, turn.sources), abstained=is_not_found(raw))

    def check_cited(self, turn: Turn) -> Turn:
        """The judge's verdict on the sources the reply cites, alone (the check before
        the prompt passed on all of them: some passage answered, not necessarily the
        one the model quoted)."""
        cited = {c.n for c in turn.reply.citations}
        if self.judge is None or turn.abstained or not cited:
            return turn
        t = time.perf_counter()
        sources = [s for s in turn.sources if s.n in cited]
        verdict = self.judge.judge(turn.standalone, sources, language=turn.language)
        return replace(turn, cited_verdict=verdict, timings=turn.timed("judge_cited_s", t))

    def record(self, turn: Turn, *, model: ModelChoice, cached: str | None = None) -> Answer:
        """The answer with its provenance and timings, also handed to ``on_answer``
        (``cached``: what the cache said, for the provenance; None: not asked)."""
        timings = turn.timed("total_s", turn.started)
        answer = Answer(
            question=turn.question,
            standalone_question=turn.standalone,
            text=turn.reply.text,
            citations=turn.reply.citations,
            sources=turn.sources,
            abstained=turn.abstained,
            dropped_markers=turn.reply.dropped_markers,
            unsupported=turn.reply.unsupported,
            finish_reason=turn.finish,
            provenance=self.provenance(turn, model=model)
            | ({} if cached is None else {"cache": cached}),
            timings={k: round(v, 4) for k, v in timings.items()},
            caution=_caution(turn.cited_verdict),
        )
        if self.on_answer is not None:
            self.on_answer(answer)
        return answer

    def provenance(self, turn: Turn, *, model: ModelChoice) -> dict[str, Any]:
        """What the answer can be traced by: the chunks (ids, hashes), the model and its
        version (None: the base model), the prompt."""
        hashes = self.chunks.content_hashes([h.chunk_id for h in turn.hits])
        return {
            "model": getattr(model.model, "name", type(model.model).__name__),
            "model_version": model.version,
            "prompt_version": PROMPT_VERSION,
            "retrieved": [
                {"chunk_id": h.chunk_id, "content_hash": hashes.get(h.chunk_id), "score": h.score}
                for h in turn.hits
            ],
            "evidence": None if turn.evidence is None else round(turn.evidence, 4),
            "support": turn.support,
            "answerability": None
            if turn.verdict is None
            else {
                "judge": turn.judge,
                **_verdict_fields(turn.verdict),
                "cited": None
                if turn.cited_verdict is None
                else _verdict_fields(turn.cited_verdict),
            },
        }


#: A word with the spaces after it: how a cached answer is replayed.
_WORDS = re.compile(r"\s*\S+\s*")


def _total(turn: Turn) -> dict[str, float]:
    return {"total_s": round(time.perf_counter() - turn.started, 4)}


def _verdict_fields(verdict: Verdict) -> dict[str, Any]:
    return {
        "answerable": verdict.answerable,
        "score": round(verdict.score, 4),
        "reason": verdict.reason,
    }


def _caution(cited: Verdict | None) -> str | None:
    """The notice for a reply whose cited passages do not answer the question."""
    if cited is None or cited.answerable:
        return None
    return f"Check this answer against its sources: {cited.reason}."
