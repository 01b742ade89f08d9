"""The training set: the company's rated answers and its documents, in the answer prompt.

``TrainingDataService.build`` gathers three kinds of example (see
``llm.finetune.dataset`` for the folder they are written to):

- **feedback**: answers rated thumbs-up, and thumbs-down answers whose comment
  carries a correction (``Correction: <the right answer>``, see
  ``parse_correction``), in the prompt they were answered from, rebuilt from the
  stored provenance (the retrieved chunks, packed the way the answer service
  packs them) and the chat's earlier turns. A thumbs-down without a correction
  teaches nothing and is left out; so is an answer whose chunks have changed
  since (re-indexed or deleted), whose prompt can no longer be rebuilt exactly.
- **grounded**: a question about a chunk (asked by the configured generative model
  when there is one, made from a template otherwise), the context the retriever
  really returns for it, gold chunk included and the rest distractors (as RAFT,
  Zhang et al. 2024, trains), and a reply quoting the chunk with its ``[n]``.
- **refusal**: such a question with the gold document's chunks (and any chunk
  that holds the answer) taken out of its context, answered with the not-found
  sentence.

Every example records the collections its prompt drew on; the dataset records
them all, so a model trained on it is only served to users who may read every
one. Only admins build datasets, and every build is audited.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.chat import ChatMessage, ChatSession, Feedback
from app.db.models import Chunk, Collection, Document, DocumentStatus
from app.errors import InvalidInput
from app.services.actor import Actor
from app.services.answer import AnswerService, Turn
from app.services.audit import AuditLog
from app.services.collections import CollectionService
from app.services.search import SearchResult
from llm.base import ChatMessage as Message
from llm.base import ChatModel, ChatRequest, GenerationParams, Source, is_generative
from llm.citations import verify
from llm.finetune.dataset import (
    DatasetInfo,
    Example,
    answer_sentences,
    cited_reply,
    dedupe,
    example_id,
    source_holding,
    split_by_document,
    template_question,
    write_dataset,
)
from llm.history import prune_history
from llm.language import detect_language
from llm.prompts import PROMPT_VERSION, QUESTION_VERSION, build_question_messages, not_found_text

log = logging.getLogger(__name__)

#: A thumbs-down comment starting with one of these carries the right answer after it.
CORRECTION_PREFIXES = ("correction:", "correct answer:", "更正：", "更正:", "正确答案：")
_CORRECTION = re.compile(
    r"^\s*(?:" + "|".join(re.escape(p) for p in CORRECTION_PREFIXES) + r")\s*", re.IGNORECASE
)


def parse_correction(comment: str) -> str | None:
    """The corrected answer a thumbs-down comment carries, or None.

    An admin (or any user) writes ``Correction: <the right answer>`` in the feedback
    box, citing sources by their ``[n]`` as the answer did, e.g. ``Correction: New
    employees get 25 days of paid vacation [1].``
    """
    m = _CORRECTION.match(comment or "")
    if not m:
        return None
    text = comment[m.end() :].strip()
    return text or None


@dataclass(frozen=True)
class DatasetOptions:
    #: Questions generated per document (chunks sampled from it, seeded).
    questions_per_document: int = 4
    #: One refusal example for this many grounded ones (0: none).
    refusal_every: int = 3
    validation_share: float = 0.2
    seed: int = 0
    #: ``auto``: the configured model if it is generative, else templates.
    questions: str = "auto"
    #: Token budget for the sources (None: the answer service's own).
    context_tokens: int | None = None


Progress = Callable[[str, int, int], None]


class TrainingDataService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        answers: AnswerService,
        *,
        collections: CollectionService,
        audit: AuditLog,
        chat_model: Callable[[], ChatModel],
    ) -> None:
        self.sessions = sessions
        self.answers = answers
        self.collections = collections
        self.audit = audit
        self._chat_model = chat_model

    def build(
        self,
        actor: Actor,
        out: Path,
        *,
        collection_names: Sequence[str] = (),
        options: DatasetOptions | None = None,
        progress: Progress | None = None,
    ) -> DatasetInfo:
        """Gather, split and write a dataset from the named collections (all if none)."""
        opts = options or DatasetOptions()
        with self.audit.event(
            "finetune.dataset",
            actor,
            target_type="dataset",
            target_id=str(out)[-64:],
            details={"collections": list(collection_names)},
        ) as ev:
            actor.require_admin()
            cols = self._collections(collection_names)
            ids = {c.id for c in cols}
            builder = _Builder(self, ids, {c.name: c.id for c in cols}, opts)
            feedback, excluded = builder.feedback()
            generated = list(builder.generated(progress))
            examples = dedupe([*feedback, *generated])
            if not examples:
                left_out = ", ".join(
                    f"{n} {why.replace('_', ' ')}" for why, n in excluded.items() if n
                )
                raise InvalidInput(
                    "no training examples: the collections have no ready documents to ask "
                    "about and no usable rated answers"
                    + (f" (left out: {left_out})" if left_out else "")
                )
            train, validation = split_by_document(
                examples, validation_share=opts.validation_share, seed=opts.seed
            )
            drawn = {c for e in examples for c in e.collection_ids}
            info = write_dataset(
                out,
                train=train,
                validation=validation,
                prompt_version=PROMPT_VERSION,
                collections=[{"id": c.id, "name": c.name} for c in cols if c.id in drawn],
                extra={
                    "excluded": excluded,
                    "question_source": builder.question_source,
                    "question_prompt_version": QUESTION_VERSION,
                    "seed": opts.seed,
                    "context_tokens": builder.context_tokens,
                },
            )
            ev.details.update(hash=info.hash, examples=len(examples))
            return info

    def _collections(self, names: Sequence[str]) -> list[Collection]:
        if not names:
            return self.collections.list_collections()
        return [self.collections.get_by_name(n) for n in names]  # NotFound for a bad name


class _Builder:
    """One dataset build: the collections it may draw on and its seeded choices."""

    def __init__(
        self,
        service: TrainingDataService,
        collection_ids: set[str],
        ids_by_name: dict[str, str],
        opts: DatasetOptions,
    ) -> None:
        self.s = service
        self.collection_ids = collection_ids
        self.ids_by_name = ids_by_name
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.context_tokens = opts.context_tokens or service.answers.options.context_tokens
        model = service._chat_model() if opts.questions != "template" else None
        self.question_model = model if model is not None and is_generative(model) else None
        if opts.questions == "llm" and self.question_model is None:
            raise InvalidInput("--questions llm needs a generative chat model configured")
        self.question_source = "llm" if self.question_model is not None else "template"

    # -- the prompt, as the answer service builds it -----------------------------------

    def prompt(
        self, question: str, hits: Sequence[SearchResult], history: Sequence[Message] = ()
    ) -> tuple[tuple[Message, ...], tuple[Source, ...]]:
        """The exact messages and numbered sources the answer service sends for these hits."""
        a = self.s.answers
        turn = Turn(
            question=question,
            language=detect_language(question),
            history=tuple(prune_history(list(history), max_tokens=a.options.history_tokens)),
            started=0.0,
            standalone=question,
            hits=tuple(hits),
        )
        turn = a.pack(turn, max_tokens=self.context_tokens)
        request: ChatRequest = a.prompt(turn)
        return tuple(request.messages), turn.sources

    def collections_of(
        self, sources: Sequence[Source], hits: Sequence[SearchResult]
    ) -> tuple[str, ...]:
        names = {h.document_id: h.collection for h in hits}
        return tuple(sorted({self.ids_by_name[names[s.document_id]] for s in sources}))

    # -- (a) rated answers -------------------------------------------------------------

    def feedback(self) -> tuple[list[Example], dict[str, int]]:
        excluded = dict.fromkeys(
            ("downvoted_without_correction", "sources_changed", "drew_on_other_collections"), 0
        )
        out: list[Example] = []
        for fb, answer, chat in self._rated():
            correction = parse_correction(fb.comment) if fb.rating < 0 else None
            if fb.rating < 0 and correction is None:
                excluded["downvoted_without_correction"] += 1
                continue
            example = self._from_answer(answer, chat, correction, excluded)
            if example is not None:
                out.append(example)
        return out, excluded

    def _rated(self) -> Iterator[tuple[Feedback, ChatMessage, ChatSession]]:
        with self.s.sessions() as s:
            rows = s.execute(
                select(Feedback, ChatMessage, ChatSession)
                .join(ChatMessage, Feedback.message_id == ChatMessage.id)
                .join(ChatSession, ChatMessage.session_id == ChatSession.id)
                .order_by(Feedback.created_at, Feedback.id)
            ).all()
        yield from rows

    def _from_answer(
        self,
        answer: ChatMessage,
        chat: ChatSession,
        correction: str | None,
        excluded: dict[str, int],
    ) -> Example | None:
        with self.s.sessions() as s:
            earlier = list(
                s.scalars(
                    select(ChatMessage)
                    .where(ChatMessage.session_id == chat.id, ChatMessage.seq < answer.seq)
                    .order_by(ChatMessage.seq)
                )
            )
        if not earlier or earlier[-1].role != "user":
            return None
        question = earlier[-1].content
        history = [Message(m.role, m.content) for m in earlier[:-1]]  # type: ignore[arg-type]
        retrieved = (answer.meta.get("provenance") or {}).get("retrieved") or []
        ids = [r["chunk_id"] for r in retrieved]
        hits = self.s.answers.search.load(
            ids, {r["chunk_id"]: r.get("score", 0.0) for r in retrieved}
        )
        hashes = self.s.answers.chunks.content_hashes(ids)
        if len(hits) != len(ids) or any(
            hashes.get(r["chunk_id"]) != r.get("content_hash") for r in retrieved
        ):
            excluded["sources_changed"] += 1
            return None
        if any(self.ids_by_name.get(h.collection) not in self.collection_ids for h in hits):
            excluded["drew_on_other_collections"] += 1
            return None
        messages, sources = self.prompt(question, hits, history)
        target = answer.content if correction is None else verify(correction, sources).text
        cited = {s.document_id for s in sources if f"[{s.n}]" in target}
        docs = tuple(sorted(cited or {s.document_id for s in sources}))
        return Example(
            id=example_id(messages, target),
            source="feedback" if correction is None else "correction",
            messages=messages,
            target=target,
            question=question,
            language=detect_language(question),
            document_ids=docs,
            collection_ids=self.collections_of(sources, hits),
            answer_chunk_ids=tuple(c["chunk_id"] for c in answer.citations if "chunk_id" in c),
        )

    # -- (b) grounded questions and (c) refusals ---------------------------------------

    def generated(self, progress: Progress | None) -> Iterator[Example]:
        docs = self._documents()
        made = 0
        for i, doc in enumerate(docs):
            if progress is not None:
                progress("questions", i, len(docs))
            for chunk in self._sample_chunks(doc.id):
                for example in self._about(chunk, doc, refuse=False):
                    made += 1
                    yield example
                    every = self.opts.refusal_every
                    if every and made % every == 0:
                        yield from self._about(chunk, doc, refuse=True)
        if progress is not None:
            progress("questions", len(docs), len(docs))

    def _documents(self) -> list[Document]:
        with self.s.sessions() as s:
            return list(
                s.scalars(
                    select(Document)
                    .where(
                        Document.collection_id.in_(sorted(self.collection_ids)),
                        Document.status == DocumentStatus.READY,
                    )
                    .order_by(Document.name, Document.id)
                )
            )

    def _sample_chunks(self, document_id: str) -> list[Chunk]:
        with self.s.sessions() as s:
            chunks = list(
                s.scalars(
                    select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.ordinal)
                )
            )
        usable = [c for c in chunks if answer_sentences(c.text, max_sentences=1)]
        k = min(self.opts.questions_per_document, len(usable))
        return sorted(self.rng.sample(usable, k), key=lambda c: c.ordinal)

    def _about(self, chunk: Chunk, doc: Document, *, refuse: bool) -> Iterator[Example]:
        sentences = answer_sentences(chunk.text)
        if not sentences:
            return
        lang = detect_language(chunk.text)
        question = self._question(chunk, doc, sentences[0])
        if not question:
            return
        top_k = self.s.answers.options.top_k
        # A refusal's context is what else the search finds once the answer is gone:
        # look deeper, as the question's own document fills the first places.
        hits, _ = self.s.answers.search.search_with_evidence(
            question, k=top_k * 4 if refuse else top_k, collection_ids=sorted(self.collection_ids)
        )
        if refuse:
            hits = [
                h
                for h in hits
                if h.document_id != doc.id and not any(s in h.text for s in sentences)
            ][:top_k]
            if not hits:
                return
            messages, sources = self.prompt(question, hits)
            target = not_found_text(lang)
            answer_chunks: tuple[str, ...] = ()
        else:
            hits = self._with_gold(hits, chunk, top_k)
            messages, sources = self.prompt(question, hits)
            gold = source_holding(sources, doc.id, sentences[0])
            if gold is None:  # packing cut it: nothing to quote
                return
            kept = [s for s in sentences if source_holding([gold], doc.id, s)]
            target = cited_reply(kept, gold.n)
            answer_chunks = (chunk.id,)
        yield Example(
            id=example_id(messages, target),
            source="refusal" if refuse else "grounded",
            messages=messages,
            target=target,
            question=question,
            language=lang,
            # The document the question is about (its sources may come from others):
            # what the split keeps on one side.
            document_ids=(doc.id,),
            collection_ids=self.collections_of(sources, hits),
            answer_chunk_ids=answer_chunks,
        )

    def _with_gold(self, hits: list[SearchResult], chunk: Chunk, top_k: int) -> list[SearchResult]:
        """The retrieved hits with the gold chunk among them: where the retriever ranked
        it, or (when it missed it) at a random place, a distractor making room."""
        if any(h.chunk_id == chunk.id for h in hits):
            return hits
        gold = self.s.answers.search.load([chunk.id], {chunk.id: 0.0})
        if not gold:
            return hits
        hits = hits[: max(top_k - 1, 0)]
        hits.insert(self.rng.randint(0, len(hits)), gold[0])
        return hits

    def _question(self, chunk: Chunk, doc: Document, sentence: str) -> str:
        lang = detect_language(chunk.text)
        if self.question_model is not None:
            messages = build_question_messages(
                chunk.text, title=doc.title or doc.name, language=lang
            )
            request = ChatRequest(
                messages=messages,
                question="",
                params=GenerationParams(max_tokens=64, temperature=0.0, seed=self.opts.seed),
                language=lang,
            )
            try:
                text = self.question_model.complete(request).text
            except Exception as e:  # a failing model falls back to the template
                log.warning("question generation failed, using a template: %s", e)
            else:
                q = _first_question(text)
                if q:
                    return q
        section = chunk.section_path[-1] if chunk.section_path else ""
        return template_question(sentence, title=doc.title or doc.name, section=section, lang=lang)


def _first_question(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().strip("\"'“”").strip()
        line = re.sub(r"^(?:question|q|问题)\s*[:：]\s*", "", line, flags=re.IGNORECASE)
        if len(line) > 8:
            return line[:300]
    return ""
