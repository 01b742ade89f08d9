"""Conversation history cut to a token budget, newest turns first.

A turn is a user message and the assistant replies that follow it. Turns are
kept or dropped whole: an answer without its question (or the reverse) misleads
the model more than a shorter history does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from llm.base import ChatMessage

TokenCounter = Callable[[str], int]

#: Role markers and separators a chat template adds around every message.
MESSAGE_OVERHEAD_TOKENS = 4

# Characters a BPE tokenizer spends about one token on: CJK ideographs and
# punctuation, kana, Hangul, fullwidth forms.
_WIDE = re.compile(
    r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    r"\U00020000-\U0003134f]"
)


def approx_tokens(text: str) -> int:
    """Token estimate without a tokenizer: one per CJK character, one per 4 other characters."""
    wide = len(_WIDE.findall(text))
    return wide + math.ceil((len(text) - wide) / 4)


def _turns(messages: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    turns: list[list[ChatMessage]] = []
    for m in messages:
        if m.role == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def prune_history(
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int,
    count_tokens: TokenCounter = approx_tokens,
    overhead: int = MESSAGE_OVERHEAD_TOKENS,
) -> list[ChatMessage]:
    """The most recent whole turns that fit in ``max_tokens``, in their original order.

    Leading system messages are always kept and counted first. The latest user
    message is always kept, even alone over budget (it is the question being
    asked); replies after it are kept only if they fit. Older turns are added
    newest first and stop at the first that does not fit, so the kept history has
    no gaps.
    """

    def cost(ms: Sequence[ChatMessage]) -> int:
        return sum(count_tokens(m.content) + overhead for m in ms)

    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    system, rest = list(messages[:lead]), messages[lead:]
    budget = max_tokens - cost(system)
    turns = _turns(rest)
    kept: list[list[ChatMessage]] = []
    if turns and turns[-1][0].role == "user":
        # The latest user message is never dropped; its replies go while they fit.
        latest = turns.pop()
        keep = [latest[0]]
        budget -= cost(keep)
        for reply in latest[1:]:
            if cost([reply]) > budget:
                break
            keep.append(reply)
            budget -= cost([reply])
        kept.append(keep)
    for turn in reversed(turns):
        c = cost(turn)
        if c > budget:
            break
        kept.append(turn)
        budget -= c
    return system + [m for turn in reversed(kept) for m in turn]
