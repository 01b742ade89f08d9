"""``lantern ask`` and ``lantern chat``: streamed answers with verified citations."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict
from typing import Any

from rich.markup import escape

from app.cli.common import console, short
from app.container import Container
from app.services.answer import Answer
from llm.base import ChatMessage


def print_answer_stream(
    c: Container,
    question: str,
    *,
    collection_ids: Collection[str] | None,
    history: list[ChatMessage],
    as_json: bool = False,
) -> Answer:
    answer: Answer | None = None
    for event in c.answers.stream(question, collection_ids=collection_ids, history=history):
        if event.answer is not None:
            answer = event.answer
        elif not as_json:
            console.print(escape(event.delta), end="", soft_wrap=True, highlight=False)
    assert answer is not None
    if as_json:
        print(json.dumps(answer_json(answer), ensure_ascii=False, indent=2))
        return answer
    console.print()
    if answer.citations:
        console.print("\n[bold]Sources[/]")
        for cit in answer.citations:
            where = cit.title + (f", page {cit.page}" if cit.page else "")
            console.print(
                f"  [cyan][{cit.n}][/] {escape(where)}: “{escape(short(cit.quote, 200))}”"
            )
    if answer.notice:
        console.print(f"[yellow]note: {answer.notice}[/]")
    if answer.dropped_markers or answer.unsupported:
        console.print(
            f"[yellow]{answer.dropped_markers} citation(s) to no source removed; "
            f"{len(answer.unsupported)} unsupported[/]"
        )
    return answer


def answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "citations": [asdict(c) for c in answer.citations],
        "dropped_markers": answer.dropped_markers,
        "unsupported": list(answer.unsupported),
        "finish_reason": answer.finish_reason,
        "notice": answer.notice,
        "provenance": dict(answer.provenance),
        "timings": dict(answer.timings),
    }
