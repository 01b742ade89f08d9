"""One plain shape of an answer, for every entry point that shows or stores one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.services.answer import Answer


def answer_fields(answer: Answer) -> dict[str, Any]:
    """The answer as JSON-ready fields: the text, its verified citations, how it ended,
    and its provenance and timings. The REST, OpenAI and CLI views and the stored
    message are all cut from this."""
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "text": answer.text,
        "citations": [asdict(c) for c in answer.citations],
        "abstained": answer.abstained,
        "finish_reason": answer.finish_reason,
        "notice": answer.notice,
        "dropped_markers": answer.dropped_markers,
        "unsupported": list(answer.unsupported),
        "provenance": dict(answer.provenance),
        "timings": dict(answer.timings),
    }


#: The fields that say how an answer ended (the OpenAI route's ``lantern`` extension).
OUTCOME_FIELDS = ("abstained", "finish_reason", "notice")


def answer_meta(answer: Answer) -> dict[str, Any]:
    """What is stored with an assistant message besides its text and citations."""
    fields = answer_fields(answer)
    for stored_apart in ("question", "text", "citations"):
        del fields[stored_apart]
    return fields
