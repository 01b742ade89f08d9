"""Whether an embedding model reads a query, from the scripts the query is written in.

An embedding model declares the languages it was trained on (``languages``: ISO 639-1
codes, or ``MULTILINGUAL``). A model trained on English alone maps Chinese text to
near-random vectors; fused with BM25 by RRF, that noise takes half the vote and pulls
good lexical hits down (CMRC 2018 with MiniLM: Recall@5 0.76 hybrid against 0.99 for
BM25 alone). So the hybrid retriever lets the dense list vote only when the model
``reads`` the query: when at least half of the query (``coverage``) is written in a
script of a language the model knows. Otherwise BM25 alone ranks.

Scripts, not languages, are told apart: that is certain for a few words, where
guessing English from French in a five-word query is not, and a model trained on one
Latin-script language shares most subwords, names and numbers with the others. In a
query that mixes scripts, the grammar decides, as in ``llm.language``: a Latin word
counts 2 when it is an English function word ("what", "does", "the") and 0.5 when it
is a bare term, the product or person name a Chinese sentence borrows ("《SOUL
EATER》是谁的漫画作品？" is Chinese; "What does 知识库 mean?" is English). Han text counts
one word per 1.5 characters (the mean length of a Chinese word), kana likewise;
digits and punctuation count for nothing. On CMRC 2018's 66 Chinese questions with
Latin names, a partial vote by plain word share lost 1.5 points of Recall@5 to BM25;
this rule loses none.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

MULTILINGUAL: frozenset[str] = frozenset({"*"})
"""``languages`` of a model trained on many languages (bge-m3, multilingual-e5, LaBSE)."""

_HAN_CHARS_PER_WORD = 1.5
#: Least ``coverage`` at which the model's vectors vote in the fusion.
READS_AT = 0.5
_FUNCTION_WEIGHT = 2.0  # in a mixed-script query: an English function word
_BORROWED_WEIGHT = 0.5  # in a mixed-script query: any other Latin word
_ENGLISH_FUNCTION_WORDS = frozenset(
    """
    a an the this that these those is are was were be been being am do does did have has
    had what which who whom whose when where why how can could should would will shall may
    might must i you he she it we they me my your his her its our their of in on at to for
    from with by about into over under between after before and or but not no if than then
    there here so as any all some each please tell explain describe show give list mean
    """.split()
)

# Script -> (the languages written in it, a pattern of one "word" of it).
_SCRIPTS: dict[str, tuple[frozenset[str], str]] = {
    "Hani": (
        frozenset({"zh", "ja"}),
        "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+",
    ),
    "Kana": (frozenset({"ja"}), "[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]+"),
    "Hang": (frozenset({"ko"}), "[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+"),
    "Cyrl": (
        frozenset({"ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "mn", "tg"}),
        "[\u0400-\u04ff]+",
    ),
    "Arab": (frozenset({"ar", "fa", "ur", "ps", "ku"}), "[\u0600-\u06ff\u0750-\u077f]+"),
    "Hebr": (frozenset({"he", "yi"}), "[\u0590-\u05ff]+"),
    "Grek": (frozenset({"el"}), "[\u0370-\u03ff]+"),
    "Thai": (frozenset({"th"}), "[\u0e00-\u0e7f]+"),
    "Deva": (frozenset({"hi", "mr", "ne", "sa"}), "[\u0900-\u097f]+"),
    # Latin last: its class (letters minus everything above) is the remainder.
    "Latn": (
        frozenset(
            "en fr de es it pt nl sv da no nb nn fi et lv lt pl cs sk sl hr bs sq ro hu tr "
            "az uz id ms tl vi sw af ca eu gl ga cy is mt la eo".split()
        ),
        r"[^\W\d_\u0370-\u03ff\u0400-\u04ff\u0590-\u077f\u0900-\u097f\u0e00-\u0e7f"
        r"\u1100-\u11ff\u3040-\u31ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
        r"\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]+",
    ),
}
_UNITS = re.compile("|".join(f"(?P<{name}>{pattern})" for name, (_, pattern) in _SCRIPTS.items()))


def script_words(text: str) -> dict[str, float]:
    """Weighed words of ``text`` per script (ISO 15924 code); see the module docstring."""
    units = [(m.lastgroup or "Latn", m.group()) for m in _UNITS.finditer(text)]
    mixed = len({script for script, _ in units}) > 1
    words: dict[str, float] = {}
    for script, unit in units:
        if script in ("Hani", "Kana"):
            weight = len(unit) / _HAN_CHARS_PER_WORD
        elif script == "Latn" and mixed:
            english = unit.lower() in _ENGLISH_FUNCTION_WORDS
            weight = _FUNCTION_WEIGHT if english else _BORROWED_WEIGHT
        else:
            weight = 1.0
        words[script] = words.get(script, 0.0) + weight
    return words


def reads(text: str, languages: Collection[str]) -> bool:
    """Whether a model of ``languages`` understands ``text`` well enough to rank it."""
    return coverage(text, languages) >= READS_AT


def coverage(text: str, languages: Collection[str]) -> float:
    """Weighed share (0-1) of ``text`` in scripts a model of ``languages`` reads; 1.0 for
    a multilingual model and for text without words (numbers, codes)."""
    if "*" in languages:
        return 1.0
    words = script_words(text)
    total = sum(words.values())
    if total == 0:
        return 1.0
    known = frozenset(languages)
    covered = sum(n for script, n in words.items() if _SCRIPTS[script][0] & known)
    return covered / total


def normalise_languages(values: Iterable[str]) -> frozenset[str]:
    """Lower-cased ISO codes (``zh-CN`` -> ``zh``); ``*`` stands for every language."""
    out = {v.strip().lower().replace("_", "-").split("-")[0] for v in values if v.strip()}
    return MULTILINGUAL if "*" in out else frozenset(out)
