"""What a request may carry, defined once for every entry point: the length of a
question and of a comment, and what a question costs against the rate limit."""

from __future__ import annotations

from app.errors import InvalidInput

MAX_QUESTION_CHARS = 4000
MAX_COMMENT_CHARS = 4000
#: What a question costs against the per-minute budget, against 1 for any other request.
QUESTION_COST = 5


def question_text(question: str) -> str:
    """The question as it will be answered (trimmed), or ``InvalidInput`` saying why not."""
    question = question.strip()
    if not question:
        raise InvalidInput("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"questions are limited to {MAX_QUESTION_CHARS} characters")
    return question
