"""``lantern ask`` and ``lantern chat``: streamed answers with verified citations."""

from __future__ import annotations

import json

from rich.markup import escape

from app.cli.common import console, short
from app.container import Container
from app.services.actor import Actor
from app.services.answer import Answer
from app.services.answer_view import answer_fields
from app.services.chat import ALL_COLLECTIONS_MODEL, MODEL_PREFIX
from llm.base import ChatMessage


def print_answer_stream(
    c: Container,
    question: str,
    *,
    collection: str | None,
    history: list[ChatMessage],
    as_json: bool = False,
) -> Answer:
    """Answer ``question`` in every collection, or the one named, printing as it streams."""
    model = MODEL_PREFIX + collection if collection else ALL_COLLECTIONS_MODEL
    answer: Answer | None = None
    events = c.chats.complete(Actor.cli(), question, history=history, model=model, api="cli")
    for event in events:
        if event.answer is not None:
            answer = event.answer
        elif not as_json:
            console.print(escape(event.delta), end="", soft_wrap=True, highlight=False)
    assert answer is not None
    if as_json:
        fields = answer_fields(answer)
        fields["answer"] = fields.pop("text")
        print(json.dumps(fields, ensure_ascii=False, indent=2))
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
