"""Prompts: the answer follows the question's language, sources are numbered, history is kept."""

from __future__ import annotations

import pytest

from llm.base import ChatMessage, Source
from llm.language import detect_language
from llm.prompts import (
    ANSWER_V1,
    CONDENSE_VERSION,
    NOT_FOUND,
    PROMPT_VERSION,
    TEMPLATES,
    build_answer_messages,
    build_condense_messages,
    is_not_found,
    not_found_text,
    parse_condensed,
)

SOURCES = [
    Source(1, "c1", "d1", "Employee Handbook", 3, "Employees get 25 days of paid vacation."),
    Source(2, "c2", "d2", "IT  Security\nPolicy", None, "Passwords expire every 90 days.\n"),
]


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("How many vacation days do I get?", "en"),
        ("我每年有几天年假？", "zh"),
        ("VPN 连不上怎么办", "zh"),
        ("GitLab CI pipeline 报错", "zh"),
        ("如何配置 Kubernetes ingress?", "zh"),
        ("What does 知识库 mean?", "en"),
        ("Who is 张三 and what is his role in the finance team?", "en"),
        ("", "en"),
        ("1234 ???", "en"),
    ],
)
def test_detect_language_handles_mixed_text(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_english_question_gets_english_rules_with_the_exact_not_found_reply() -> None:
    system, *_ = build_answer_messages("How many vacation days do I get?", SOURCES)
    assert system.role == "system"
    assert NOT_FOUND["en"] in system.content
    assert "[1]" in system.content
    assert "Answer in English" in system.content


def test_chinese_question_gets_chinese_rules_with_the_chinese_not_found_reply() -> None:
    system, *_, user = build_answer_messages("我每年有几天年假？", SOURCES)
    assert not_found_text("zh") in system.content
    assert NOT_FOUND["en"] not in system.content
    assert "用中文回答" in system.content
    assert user.content.endswith("问题：我每年有几天年假？")


def test_sources_are_numbered_with_title_and_page() -> None:
    *_, user = build_answer_messages("How many vacation days do I get?", SOURCES)
    assert user.role == "user"
    assert user.content == (
        "Sources:\n\n"
        "[1] Employee Handbook (page 3)\nEmployees get 25 days of paid vacation.\n\n"
        "[2] IT Security Policy\nPasswords expire every 90 days.\n\n"
        "Question: How many vacation days do I get?"
    )


def test_sources_keep_their_own_numbers() -> None:
    later = [Source(4, "c4", "d4", "Travel", 1, "Book trains in advance.")]
    *_, user = build_answer_messages("How do I book trains?", later)
    assert "[4] Travel (page 1)\nBook trains in advance." in user.content


def test_duplicate_source_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[1\]"):
        build_answer_messages("q", [SOURCES[0], SOURCES[0]])


def test_no_sources_still_asks_for_the_not_found_reply() -> None:
    system, user = build_answer_messages("What is the wifi password?", [])
    assert NOT_FOUND["en"] in system.content
    assert "(no sources)" in user.content


def test_history_sits_between_the_rules_and_the_question_in_order() -> None:
    history = [
        ChatMessage("system", "caller's own system message"),
        ChatMessage("user", "How many vacation days do I get?"),
        ChatMessage("assistant", "You get 25 days [1]."),
        ChatMessage("user", "And sick days?"),
        ChatMessage("assistant", "Ten [2][3]."),
    ]
    messages = build_answer_messages("Can I carry them over?", SOURCES, history)
    assert [m.role for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert [m.content for m in messages[1:5]] == [
        "How many vacation days do I get?",
        "You get 25 days.",  # old [n] pointed at an old source list
        "And sick days?",
        "Ten.",
    ]
    assert messages[-1].content.endswith("Question: Can I carry them over?")


def test_every_template_is_registered_under_its_version() -> None:
    assert TEMPLATES[PROMPT_VERSION] is ANSWER_V1
    assert PROMPT_VERSION == "answer-v1"
    assert CONDENSE_VERSION in TEMPLATES
    assert all(t.version == v for v, t in TEMPLATES.items())


def test_condense_asks_for_only_a_standalone_query() -> None:
    history = [
        ChatMessage("user", "What is the vacation policy?"),
        ChatMessage("assistant", "You get 25 days\nper year [1]."),
    ]
    system, user = build_condense_messages(history, "Can I carry them over?")
    assert "standalone search query" in system.content
    assert "Output only the query" in system.content
    assert user.content == (
        "Conversation:\n"
        "User: What is the vacation policy?\n"
        "Assistant: You get 25 days per year.\n\n"
        "Follow-up question: Can I carry them over?\n\n"
        "Standalone query:"
    )


def test_condense_follows_the_follow_up_language() -> None:
    history = [ChatMessage("user", "What is the vacation policy?")]
    system, user = build_condense_messages(history, "那病假呢？")
    assert "独立检索的查询" in system.content
    assert "用户：What is the vacation policy?" in user.content
    assert "追问：那病假呢？" in user.content


@pytest.mark.parametrize(
    ("output", "query"),
    [
        ("Can unused vacation days be carried over?", "Can unused vacation days be carried over?"),
        ('Standalone query: "vacation carry-over rules"\n', "vacation carry-over rules"),
        ("\n  独立查询：病假政策\n解释……", "病假政策"),
        ("", "Can I carry them over?"),
        ("  \n ", "Can I carry them over?"),
    ],
)
def test_parse_condensed(output: str, query: str) -> None:
    assert parse_condensed(output, "Can I carry them over?") == query


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("I could not find this in the knowledge base.", True),
        ("  I could not find this in the knowledge base", True),
        ("知识库中没有找到相关内容。", True),
        ("You get 25 days [1].", False),
        ("I could not find this in the knowledge base, but [1] says 25 days.", False),
    ],
)
def test_is_not_found(answer: str, expected: bool) -> None:
    assert is_not_found(answer) is expected
