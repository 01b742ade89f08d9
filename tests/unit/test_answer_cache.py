"""The answer cache as a user notices it: the same question again comes back at once,
with the same answer and citations, until a document it could draw on changes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.services.actor import Actor
from app.services.answer import Answer
from app.services.answering.cache import normalise
from app.services.model_router import ModelChoice
from app.services.reindex import rebuild_index
from llm.base import ChatMessage, ChatRequest, StreamEvent
from llm.errors import LLMBackendError
from llm.testing import FakeChatModel
from tests.unit.ingest_helpers import ingest

QUESTION = "How many vacation days do new employees get?"
VACATION = "# Time off\n\nNew employees receive twenty-five vacation days per year."
REPLY = "New employees receive twenty-five vacation days per year [1]."


def ask(c: Any, question: str, *, history: tuple[ChatMessage, ...] = ()) -> tuple[Answer, str]:
    """The answer to a one-off question (as the OpenAI route and the CLI ask it), and
    the text that streamed before it."""
    deltas, answer = [], None
    for event in c.chats.complete(Actor.cli(), question, history=history, stream=True):
        if event.answer is not None:
            answer = event.answer
        else:
            deltas.append(event.delta)
    assert answer is not None
    return answer, "".join(deltas)


def cache_count(c: Any, result: str) -> float:
    value = c.metrics.registry.get_sample_value("lantern_answer_cache_total", {"result": result})
    return float(value or 0.0)


@pytest.fixture
def handbook(container: Any) -> Any:
    return ingest(container, {"handbook.md": VACATION.encode()}, collection="HR")


@pytest.fixture
def faked(handbook: Any, rebuilt: Any) -> tuple[Any, FakeChatModel]:
    """A container answering with a fake model that counts its requests."""
    model = FakeChatModel(default=REPLY)
    return rebuilt(overrides={"chat_model": model}), model


def test_normalised_questions_meet() -> None:
    assert normalise("  What IS the   leave policy?? ") == normalise("what is the leave policy")
    assert normalise("ＷＨＡＴ is ﬁne？") == normalise("what is fine")  # NFKC: full width, ligature
    assert normalise("Straße?") == normalise("STRASSE")  # case folding, not lowering
    assert normalise("What is A?") != normalise("What is B?")


def test_the_same_question_again_is_served_without_asking_the_model(
    faked: tuple[Any, FakeChatModel],
) -> None:
    c, model = faked
    first, streamed = ask(c, QUESTION)
    assert streamed == first.text
    assert first.provenance["cache"] == "miss"
    asked = len(model.requests)
    assert asked == 1

    again, replayed = ask(c, "  how many VACATION days do new employees   get ")
    assert len(model.requests) == asked  # the model was not asked again
    assert again.provenance["cache"] == "hit"
    # It still streams, and is the same answer with the same verified citations.
    assert replayed == again.text == first.text
    assert again.citations == first.citations
    assert again.citations
    assert "twenty-five" in again.citations[0].quote
    assert again.sources == first.sources
    assert again.provenance["retrieved"] == first.provenance["retrieved"]
    assert again.question == "how many VACATION days do new employees   get"  # as asked
    assert (cache_count(c, "miss"), cache_count(c, "hit")) == (1, 1)


def test_a_document_added_replaced_or_deleted_makes_the_next_answer_new(
    container: Any, handbook: Any
) -> None:
    # The extractive model answers from the sources, so its answer shows what it read.
    first, _ = ask(container, "Where do visitors park?")
    assert first.abstained
    assert ask(container, "Where do visitors park?")[0].provenance["cache"] == "hit"

    parking = "# Parking\n\nVisitors park on level -2 of Lumen House."
    added = ingest(container, {"parking.md": parking.encode()}, collection="HR")
    answer, _ = ask(container, "Where do visitors park?")
    assert answer.provenance["cache"] == "miss"
    assert "level -2" in answer.text

    moved = "# Parking\n\nVisitors park in the yard behind Lumen House."
    ingest(container, {"parking.md": moved.encode()}, collection="HR")  # a new version
    answer, _ = ask(container, "Where do visitors park?")
    assert answer.provenance["cache"] == "miss"
    assert "yard" in answer.text
    assert "level -2" not in answer.text

    newest = container.documents.find("parking.md")
    assert [d.id for d in newest] != [added["parking.md"].document_id]
    container.documents.delete(newest[0].id, vectors=container.vectors, lexical=container.lexical)
    answer, _ = ask(container, "Where do visitors park?")
    assert answer.provenance["cache"] == "miss"
    assert answer.abstained


def test_a_change_in_a_collection_not_searched_keeps_the_entry(
    container: Any, handbook: Any, rebuilt: Any
) -> None:
    hr = container.collections.ensure("HR").id
    first = container.answers.ask(QUESTION, collection_ids=[hr])
    assert first.provenance["cache"] == "miss"
    ingest(container, {"menu.md": b"# Menu\n\nSoup on Mondays."}, collection="Canteen")
    again = container.answers.ask(QUESTION, collection_ids=[hr])
    assert again.provenance["cache"] == "hit"
    # Searching both is another scope: its own entry.
    canteen = container.collections.ensure("Canteen").id
    both = container.answers.ask(QUESTION, collection_ids=[hr, canteen])
    assert both.provenance["cache"] == "miss"


def test_a_follow_up_shares_an_entry_only_with_the_same_conversation(
    faked: tuple[Any, FakeChatModel],
) -> None:
    c, model = faked
    history = (ChatMessage("user", "Tell me about time off."), ChatMessage("assistant", "Sure."))
    ask(c, "And for new employees?", history=history)
    asked = len(model.requests)
    # The same words opening a conversation are another question.
    bare, _ = ask(c, "And for new employees?")
    assert bare.provenance["cache"] == "miss"
    assert len(model.requests) > asked
    asked = len(model.requests)
    other = (ChatMessage("user", "Tell me about expenses."), ChatMessage("assistant", "Sure."))
    assert ask(c, "And for new employees?", history=other)[0].provenance["cache"] == "miss"
    assert len(model.requests) > asked
    asked = len(model.requests)
    same, _ = ask(c, "and for new employees", history=history)
    assert same.provenance["cache"] == "hit"
    assert len(model.requests) == asked


class CutModel(FakeChatModel):
    """Stops at the token limit: its answers are not whole."""

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        for event in super().stream(request):
            if event.done and event.completion is not None:
                yield replace(event, completion=replace(event.completion, finish_reason="length"))
            else:
                yield event


def test_answers_that_did_not_end_normally_are_not_cached(handbook: Any, rebuilt: Any) -> None:
    cut = CutModel(default=REPLY)
    c = rebuilt(overrides={"chat_model": cut})
    for _ in range(2):
        answer, _ = ask(c, QUESTION)
        assert answer.finish_reason == "length"
        assert answer.provenance["cache"] == "miss"
    assert len(cut.requests) == 2
    assert cache_count(c, "skip") == 2

    failing = FakeChatModel()
    failing.enqueue_error(LLMBackendError("the model server is down"))
    failing.enqueue(REPLY)
    c = rebuilt(overrides={"chat_model": failing})
    with pytest.raises(LLMBackendError):
        ask(c, QUESTION)
    answer, _ = ask(c, QUESTION)  # asked again, not served a failure
    assert answer.provenance["cache"] == "miss"
    assert "twenty-five" in answer.text


def test_another_model_version_does_not_share_entries(faked: tuple[Any, FakeChatModel]) -> None:
    c, base = faked
    candidate = FakeChatModel(default="Twenty-five days a year [1].", name="fake")
    base_answer = c.answers.ask(QUESTION)
    trial = c.answers.ask(QUESTION, model=ModelChoice("hr-v2", candidate))
    assert trial.provenance["cache"] == "miss"
    assert trial.text == "Twenty-five days a year [1]."
    assert len(candidate.requests) == 1
    # Each version then gets its own answer back.
    assert c.answers.ask(QUESTION, model=ModelChoice("hr-v2", candidate)).text == trial.text
    assert c.answers.ask(QUESTION).text == base_answer.text
    assert len(candidate.requests) == 1
    assert len(base.requests) == 1


def test_with_the_cache_off_every_question_is_answered_afresh(handbook: Any, rebuilt: Any) -> None:
    model = FakeChatModel(default=REPLY)
    c = rebuilt(overrides={"chat_model": model}, cache={"enabled": False})
    for _ in range(2):
        answer, _ = ask(c, QUESTION)
        assert "cache" not in answer.provenance
    assert len(model.requests) == 2
    assert cache_count(c, "hit") == cache_count(c, "miss") == 0


def test_a_redis_that_does_not_answer_is_a_miss_with_a_warning(
    handbook: Any, rebuilt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("redis", reason="needs the redis extra (pip install 'lantern[redis]')")
    model = FakeChatModel(default=REPLY)
    # Nothing listens on port 1.
    c = rebuilt(overrides={"chat_model": model}, cache={"url": "redis://127.0.0.1:1/0"})
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            answer, _ = ask(c, QUESTION)
            assert answer.provenance["cache"] == "miss"
            assert "twenty-five" in answer.text
    assert len(model.requests) == 2
    assert "answer cache unavailable" in caplog.text
    # Said once, not on every question.
    assert caplog.text.count("answer cache unavailable") == 1


def test_a_reindex_makes_the_next_answer_new(container: Any, handbook: Any, tmp_path: Path) -> None:
    assert ask(container, QUESTION)[0].provenance["cache"] == "miss"
    assert ask(container, QUESTION)[0].provenance["cache"] == "hit"
    # Rebuilt beside the live index, as `lantern reindex` does before its swap.
    rebuild_index(
        container.sessions, container.embedder, tmp_path / "vectors", container.open_vector_store
    )
    assert ask(container, QUESTION)[0].provenance["cache"] == "miss"


def test_a_replica_behind_its_writer_never_serves_what_it_answered_before_catching_up(
    faked: tuple[Any, FakeChatModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API process that reads index files another process writes learns of a new
    document from the database a moment before its files catch up: what it answers in
    between is keyed by the generation it had loaded, so it is never served after."""
    c, model = faked
    loaded = {"g": 1}
    monkeypatch.setattr(c.ingestion, "replica", True)
    monkeypatch.setattr(
        c, "_loaded_generations", lambda ids: dict.fromkeys(ids or ["x"], loaded["g"])
    )
    cache = c.answer_cache
    assert cache is not None
    monkeypatch.setattr(cache, "loaded", c._loaded_generations)
    ask(c, QUESTION)
    assert ask(c, QUESTION)[0].provenance["cache"] == "hit"
    loaded["g"] = 2  # the replica loaded the writer's next commit
    assert ask(c, QUESTION)[0].provenance["cache"] == "miss"
    assert len(model.requests) == 2
