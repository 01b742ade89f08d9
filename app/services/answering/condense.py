"""A follow-up question rewritten as a query that can be searched on its own."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from llm.base import ChatMessage, ChatModel, ChatRequest, GenerationParams, is_generative
from llm.language import Language
from llm.prompts import build_condense_messages, parse_condensed

log = logging.getLogger(__name__)

#: The rewrite is a short query, wanted fast and the same every time.
CONDENSE_PARAMS = GenerationParams(max_tokens=96, temperature=0.0, timeout_s=30)


def standalone_query(
    question: str,
    *,
    history: Sequence[ChatMessage],
    language: Language,
    model: ChatModel,
) -> str:
    """``question`` if it opens the conversation, else rewritten by the model with the
    conversation. A model that cannot write (``is_generative`` false) gets the previous
    question prepended to what reads as a follow-up ("and for managers?", "how long
    does it last?"); a new question is searched as asked."""
    previous = [m.content for m in history if m.role == "user"]
    if not previous:
        return question
    if not is_generative(model):
        return f"{previous[-1]} {question}" if is_follow_up(question) else question
    request = ChatRequest(
        messages=build_condense_messages(history, question, language=language),
        question=question,
        params=CONDENSE_PARAMS,
        language=language,
    )
    try:
        out = model.complete(request).text
    except Exception:  # a failed rewrite must not fail the answer
        log.warning("could not condense the follow-up; searching with it as asked")
        return question
    return parse_condensed(out, question)


_FOLLOW_UP_START = re.compile(
    r"^\s*(?:(?:and|or|but|also|then|so|what about|how about|what if|same for)\b"
    r"|那么|那|还有|而且|另外|如果)|呢[？?]?\s*$",
    re.IGNORECASE,
)
_REFERRING = re.compile(
    r"\b(?:it|its|they|them|their|this|that|these|those|there|he|she|his|her|one|ones)\b"
    r"|它|他们|她们|这个|那个|这些|那些",
    re.IGNORECASE,
)


def is_follow_up(question: str) -> bool:
    """Short and starting like a continuation, or leaning on a pronoun for its subject."""
    words = question.split()
    if len(words) > 12:
        return False
    return bool(_FOLLOW_UP_START.search(question)) or (
        len(words) <= 8 and bool(_REFERRING.search(question))
    )
