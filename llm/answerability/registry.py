"""Answerability judges by ``kind`` (``off`` for none); the ``reader`` falls back to
``rules`` where its model cannot load, and says so in the log."""

from __future__ import annotations

from typing import Any

from llm.answerability.base import AnswerabilityJudge
from llm.errors import LLMUnavailable
from retrieval.backends import Backend, Registry

OFF = "off"

REGISTRY: Registry[AnswerabilityJudge | None] = Registry(
    "answerability judge",
    {
        "rules": Backend("llm.answerability.rules", "RulesJudge", None),
        "reader": Backend("llm.answerability.reader", "load_reader", None),
    },
    error=LLMUnavailable,
)


def available_kinds() -> list[str]:
    return [OFF, *REGISTRY.kinds()]


def create_judge(kind: str, **options: Any) -> AnswerabilityJudge | None:
    """The judge of ``kind`` built with ``options``; None for ``off``."""
    if kind == OFF:
        return None
    judge = REGISTRY.create(kind, None, **options)
    if judge is None:
        judge = REGISTRY.create("rules", None)
    return judge
