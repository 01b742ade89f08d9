"""Questions answered from the documents, with citations a user can check."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from app.db.models import Page
from llm.base import ChatMessage
from llm.testing import FakeChatModel
from tests.fixtures import docs
from tests.unit.ingest_helpers import ingest

HANDBOOK = [
    "# Welcome\n\nNorthwind builds lighting controls for offices and warehouses.",
    "# Time off\n\nNew employees receive twenty-five vacation days per year.\n\n"
    "Up to five unused days may be carried over until the end of March.",
    "# Expenses\n\nSubmit expense claims within thirty days of purchase.",
]


@pytest.fixture
def handbook(container: Any) -> Any:
    return ingest(container, {"handbook.pdf": docs.make_pdf(HANDBOOK, title="Handbook")})


def page_text(container: Any, document_id: str, page: int) -> str:
    with container.sessions() as s:
        return s.get(Page, (document_id, page)).text


def test_extractive_answer_cites_the_right_page_with_a_verbatim_quote(
    container: Any, handbook: Any
) -> None:
    answer = container.answers.ask("How many vacation days do new employees get?")
    assert not answer.abstained
    assert "twenty-five vacation days" in answer.text
    [citation] = [c for c in answer.citations if "vacation" in c.quote]
    assert (citation.title, citation.page) == ("Handbook", 2)
    source = next(s for s in answer.sources if s.n == citation.n)
    page = page_text(container, citation.document_id, 2)
    start = source.char_start + citation.char_start
    assert page[start : start + len(citation.quote)] == citation.quote
    assert answer.provenance["prompt_version"]
    assert all(r["content_hash"] for r in answer.provenance["retrieved"])


def test_abstains_when_the_documents_cannot_answer(container: Any, handbook: Any) -> None:
    answer = container.answers.ask("What is the share price of Tesla on the Nasdaq?")
    assert answer.abstained
    assert answer.text == "I could not find this in the knowledge base."
    assert answer.citations == ()


def test_chinese_question_gets_a_chinese_not_found(container: Any, handbook: Any) -> None:
    answer = container.answers.ask("公司的股票价格是多少？")
    assert answer.abstained
    assert answer.text == "知识库中没有找到相关内容。"


def fake(rebuilt: Any, *responses: str) -> tuple[Any, FakeChatModel]:
    """A container answering with ``responses`` (in order), over the same documents."""
    model = FakeChatModel()
    for r in responses:
        model.enqueue(r)
    return rebuilt(overrides={"chat_model": model}), model


def test_markers_to_missing_sources_are_dropped_and_counted(handbook: Any, rebuilt: Any) -> None:
    c, _ = fake(rebuilt, "New employees receive twenty-five vacation days per year [1] [7].")
    answer = c.answers.ask("How many vacation days do new employees get?")
    assert "[7]" not in answer.text
    assert answer.dropped_markers == 1
    assert [c.n for c in answer.citations] == [1]


def test_a_fabricated_quote_gets_no_citation(handbook: Any, rebuilt: Any) -> None:
    c, _ = fake(rebuilt, "Employees get a free electric car after ten years [1].")
    answer = c.answers.ask("What perks do employees get?")
    assert answer.citations == ()
    assert answer.unsupported == (1,)


def test_follow_up_is_condensed_with_the_history(handbook: Any, rebuilt: Any) -> None:
    c, model = fake(
        rebuilt,
        "How many unused vacation days can be carried over?",  # the condensed query
        "Up to five unused days may be carried over until the end of March [1].",
    )
    history = [
        ChatMessage("user", "How many vacation days do new employees get?"),
        ChatMessage("assistant", "Twenty-five [1]."),
    ]
    answer = c.answers.ask("And how many carry over?", history=history)
    assert answer.standalone_question == "How many unused vacation days can be carried over?"
    assert "Twenty-five" in model.requests[0].messages[-1].content
    assert answer.citations[0].page == 2
    assert "carried over" in answer.citations[0].quote


class _BrokenMidAnswer:
    """Sends part of an answer, then ends the stream the way the guards report a failure."""

    name = "broken"

    def __init__(self, text: str, finish: str) -> None:
        self.text, self.finish = text, finish

    def stream(self, request: Any) -> Any:
        from llm.base import Completion, StreamEvent

        if self.text:
            yield StreamEvent(delta=self.text)
        yield StreamEvent(
            done=True,
            completion=Completion(self.text, self.finish, self.name),  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("finish", ["error", "timeout"])
def test_an_answer_cut_short_by_the_model_says_so(handbook: Any, finish: str, rebuilt: Any) -> None:
    c = rebuilt(overrides={"chat_model": _BrokenMidAnswer("New employees receive 25", finish)})
    answer = c.answers.ask("How many vacation days do new employees get?")
    assert answer.incomplete
    assert answer.notice is not None
    assert "incomplete" in answer.notice
    assert answer.text.startswith("New employees receive 25")


def test_a_model_that_fails_before_any_text_gives_a_clear_answer(
    handbook: Any, rebuilt: Any
) -> None:
    c = rebuilt(overrides={"chat_model": _BrokenMidAnswer("", "error")})
    events = list(c.answers.stream("How many vacation days do new employees get?"))
    answer = events[-1].answer
    assert "failed before it could answer" in answer.text
    assert "".join(e.delta for e in events[:-1]) == answer.text
    assert not answer.abstained
    assert answer.citations == ()


def test_extractive_chats_join_only_follow_ups_to_the_previous_question(
    container: Any, handbook: Any
) -> None:
    history = [
        ChatMessage("user", "How many vacation days do new employees get?"),
        ChatMessage("assistant", "25 days [1]."),
    ]
    new_topic = container.answers.ask("Who approves expense claims?", history=history)
    assert new_topic.standalone_question == "Who approves expense claims?"
    follow_up = container.answers.ask("And can they be carried over?", history=history)
    assert follow_up.standalone_question.startswith("How many vacation days")


@pytest.fixture
def detections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text whose language is detected, wherever the detector was imported."""
    from llm import language

    real, calls = language.detect_language, []

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    for module in list(sys.modules.values()):
        if getattr(module, "detect_language", None) is real:
            monkeypatch.setattr(module, "detect_language", counting)
    return calls


def test_the_language_is_detected_once_per_question(
    container: Any, handbook: Any, detections: list[str]
) -> None:
    question = "How many vacation days do new employees get?"
    answer = container.answers.ask(question)  # the extractive backend: prompt and quotes
    assert "twenty-five" in answer.text
    assert detections == [question]


def test_a_condensed_follow_up_is_detected_once_too(
    handbook: Any, detections: list[str], rebuilt: Any
) -> None:
    c, model = fake(rebuilt, "How many vacation days do new employees get?", "二十五天 [1]。")
    history = [ChatMessage("user", "年假有多少天？"), ChatMessage("assistant", "二十五天。")]
    c.answers.ask("那么新员工呢？", history=history)
    assert detections == ["那么新员工呢？"]
    condense, answer = model.requests
    # Both prompts follow the question's language, though the query is in English.
    assert "追问" in condense.messages[-1].content
    assert answer.messages[0].content.startswith("你是 Lantern")
    assert condense.language == answer.language == "zh"
