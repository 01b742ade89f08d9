"""Which language a question is in, so the answer (and the prompt) can follow it.

Only the two languages Lantern answers in are told apart: Chinese and English.
Chinese users routinely mix in English product names ("GitLab CI pipeline 报错"),
and English users sometimes quote a Chinese term ("What does 知识库 mean?"), so a
plain character ratio gets both wrong. Instead the Han characters are weighed
against the English *grammar* around them: function words ("what", "does",
"the") mark an English sentence, while bare Latin terms are the vocabulary that
Chinese sentences borrow.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["zh", "en"]

#: Han ideographs (CJK Unified Ideographs, extensions A-H, compatibility ideographs),
#: as the inside of a regex character class.
HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
HAN = re.compile(f"[{HAN_CHARS}]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")

# English words that carry grammar rather than topic: an English sentence has
# several, a Chinese sentence quoting English terms almost never does.
_FUNCTION_WORDS = frozenset(
    """
    a an the this that these those is are was were be been being am do does did
    done have has had what which who whom whose when where why how can could
    should would will shall may might must i you he she it we they me my your his
    her its our their of in on at to for from with by about into over under
    between after before and or but not no if than then there here so as any all
    some each please tell explain describe show give list
    """.split()
)

# Weights: a function word is strong evidence of English; a bare Latin word is
# weak evidence (it may be a borrowed term); one Han character is roughly one
# unit of Chinese.
_FUNCTION_WEIGHT = 2.0
_TERM_WEIGHT = 0.5


def count_han(text: str) -> int:
    """Number of Han ideographs in ``text``."""
    return len(HAN.findall(text))


def detect_language(text: str) -> Language:
    """``"zh"`` if the text reads as Chinese, else ``"en"`` (also for empty or symbol-only text).

    Chinese wins when its Han characters outweigh the English evidence: 2 per
    English function word plus 0.5 per other Latin word.
    """
    han = count_han(text)
    if han == 0:
        return "en"
    english = 0.0
    for word in _LATIN_WORD.findall(text):
        english += _FUNCTION_WEIGHT if word.lower() in _FUNCTION_WORDS else _TERM_WEIGHT
    return "zh" if han > english else "en"
