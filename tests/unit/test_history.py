"""History pruning: the newest whole turns that fit, and never the question itself."""

from __future__ import annotations

from llm.base import ChatMessage
from llm.history import approx_tokens, prune_history


def u(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def a(text: str) -> ChatMessage:
    return ChatMessage("assistant", text)


def count_words(text: str) -> int:
    return len(text.split())


CONVERSATION = [
    u("one two"),
    a("three four five"),
    u("six seven"),
    a("eight nine ten"),
    u("latest question here"),
]


def test_approx_tokens_counts_cjk_characters_one_each() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("abcd" * 10) == 10
    assert approx_tokens("知识库") == 3
    assert approx_tokens("知识库 RAG") == 3 + 1


def test_everything_kept_when_it_fits() -> None:
    assert prune_history(CONVERSATION, max_tokens=100, count_tokens=count_words, overhead=0) == (
        CONVERSATION
    )


def test_oldest_whole_turns_go_first() -> None:
    # latest 3 + turn (6..10) 5 = 8; the first turn (5 more) does not fit in 10.
    kept = prune_history(CONVERSATION, max_tokens=10, count_tokens=count_words, overhead=0)
    assert kept == CONVERSATION[2:]


def test_a_turn_is_never_split() -> None:
    # 3 + 5 = 8 > 7: the middle turn goes whole, not just its answer.
    kept = prune_history(CONVERSATION, max_tokens=7, count_tokens=count_words, overhead=0)
    assert kept == [u("latest question here")]


def test_latest_user_message_is_kept_even_over_budget() -> None:
    kept = prune_history(CONVERSATION, max_tokens=1, count_tokens=count_words, overhead=0)
    assert kept == [u("latest question here")]


def test_a_large_turn_stops_the_walk_back_so_there_are_no_gaps() -> None:
    history = [u("a b"), a("c"), u("big " * 50), a("d"), u("q")]
    kept = prune_history(history, max_tokens=20, count_tokens=count_words, overhead=0)
    assert kept == [u("q")]


def test_system_messages_are_kept_and_counted() -> None:
    history = [ChatMessage("system", "rules rules rules"), *CONVERSATION]
    kept = prune_history(history, max_tokens=11, count_tokens=count_words, overhead=0)
    assert kept == [history[0], *CONVERSATION[2:]]  # 3 + 3 + 5 = 11; the first turn does not fit
    kept = prune_history(history, max_tokens=10, count_tokens=count_words, overhead=0)
    assert kept == [history[0], *CONVERSATION[4:]]


def test_per_message_overhead_counts() -> None:
    kept = prune_history(CONVERSATION, max_tokens=14, count_tokens=count_words, overhead=2)
    assert kept == CONVERSATION[2:]  # (3+2) + (2+2) + (3+2) = 14
    kept = prune_history(CONVERSATION, max_tokens=13, count_tokens=count_words, overhead=2)
    assert kept == CONVERSATION[4:]


def test_trailing_answer_after_the_latest_question_goes_if_it_does_not_fit() -> None:
    history = [u("q1 x"), a("a1"), u("q2"), a("long " * 30)]
    kept = prune_history(history, max_tokens=5, count_tokens=count_words, overhead=0)
    assert kept == [u("q1 x"), a("a1"), u("q2")]


def test_default_counter_is_approx_tokens() -> None:
    history = [u("知识库" * 10), a("x" * 400), u("知识库")]
    assert prune_history(history, max_tokens=20) == [u("知识库")]
    assert prune_history(history, max_tokens=1000) == history


def test_empty_history() -> None:
    assert prune_history([], max_tokens=10) == []
