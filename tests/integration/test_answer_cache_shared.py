"""Several `lantern serve` over one database and one Redis share their answer cache:
what one answered, the other serves, and a document changed through either makes the
next answer new in both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.services.actor import Actor
from app.services.answer import Answer
from llm.testing import FakeChatModel
from tests.contract.redis_cache import TestRedis, redis_cache
from tests.unit.ingest_helpers import ingest

QUESTION = "How many vacation days do new employees get?"
REPLY = "New employees receive twenty-five vacation days per year [1]."


@pytest.fixture
def redis() -> Iterator[TestRedis]:
    yield from redis_cache()


def ask(c: Any, question: str) -> Answer:
    for event in c.chats.complete(Actor.cli(), question):
        if event.answer is not None:
            return event.answer  # type: ignore[no-any-return]
    raise AssertionError("no answer")


def test_two_servers_share_answers_and_each_others_changes(
    container: Any, rebuilt: Any, redis: TestRedis
) -> None:
    vacation = b"# Time off\n\nNew employees receive twenty-five vacation days per year."
    ingest(container, {"handbook.md": vacation}, collection="HR")
    shared = {"url": redis.url, "key_prefix": redis.key_prefix}
    one_model, two_model = FakeChatModel(default=REPLY), FakeChatModel(default=REPLY)
    one = rebuilt(overrides={"chat_model": one_model}, cache=shared)
    two = rebuilt(overrides={"chat_model": two_model}, cache=shared)

    first = ask(one, QUESTION)
    assert first.provenance["cache"] == "miss"
    assert redis.keys()  # it went to Redis, not to the first server's memory
    served = ask(two, "how many vacation days do new employees get")
    assert served.provenance["cache"] == "hit"
    assert two_model.requests == []
    assert (served.text, served.citations) == (first.text, first.citations)

    # A document added through the second (as a worker process would) reaches the first.
    ingest(two, {"carry.md": b"# Carry-over\n\nFive unused days carry over."}, collection="HR")
    again = ask(one, QUESTION)
    assert again.provenance["cache"] == "miss"
    assert len(one_model.requests) == 2
