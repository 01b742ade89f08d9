"""Answers without a generative model: the source sentences that best match the question.

The question and every sentence of the top sources are analysed the way a BM25
index does it (casefold, stop-words out, Snowball stems when PyStemmer is
installed; Chinese as characters and character bigrams, with question words and
function characters such as 多少 or 的 cut out). A sentence's support is the
IDF-weighted share of the question's terms it contains, IDF taken over all the
sentences, so rare terms ("parental") count for more than common ones ("leave");
terms found only in the sentence's context (the heading, lead-in or table header
just above it) count half, so a table row is found through its header. With a
``similarity`` function (the container passes embedding cosines), the support is
the mean of that share and the sentence's similarity to the question, which finds
paraphrases that share no words. Headings and bare names are context, never
answers. The answer is up to ``max_sentences`` sentences with support of at least
``min_support``, best first, preferring distinct sources, each quoted verbatim
(runs of whitespace aside) and followed by its marker ``[n]``. With none, it is
exactly the not-found reply, in the question's language.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from llm.base import ChatRequest, Completion, FinishReason, Source, StreamEvent
from llm.guards import approx_tokens, truncate_tokens
from llm.language import HAN_CHARS, Language, detect_language
from llm.prompts import NOT_FOUND
from llm.sentences import BULLET, sentence_spans

#: The not-found replies, word for word as the prompts tell models to give them.
# One wording everywhere: the prompt tells generative models to use the same text.
NOT_FOUND_TEXT = NOT_FOUND["en"]
NOT_FOUND_TEXT_ZH = NOT_FOUND["zh"]

#: Least support for a quoted sentence, lexical only and with semantic similarity:
#: the floors with the best abstention accuracy on app/samples/gold_qa_more.jsonl
#: (`lantern eval qa --calibrate`, all-MiniLM-L6-v2; README "Answer quality").
MIN_SUPPORT = 0.22
MIN_SUPPORT_SEMANTIC = 0.42
#: A question term found only in a sentence's heading or table header counts this much.
CONTEXT_WEIGHT = 0.5

Similarity = Callable[[str, Sequence[str]], Sequence[float]]
"""``similarity(question, sentences)``: one score per sentence, cosine-like (about 0-1)."""
#: Sentences after the first need at least this share of the best one's support.
RELATIVE_SUPPORT = 0.6
MAX_SENTENCES = 3
MAX_SOURCES = 5

_MAX_SENTENCE_CHARS = 400  # longer pieces (tables, unpunctuated text) are split at line breaks
_SPACE = re.compile(r"\s+")
_SPACE_IN_HAN = re.compile(f"(?<=[{HAN_CHARS}，、：])\\s+(?=[{HAN_CHARS}])")
_TERMS = re.compile(f"([{HAN_CHARS}]+)|[^\\W_{HAN_CHARS}]+")
_STREAM_PIECE = re.compile(f"[{HAN_CHARS}]\\s*|[^\\s{HAN_CHARS}]+\\s*|\\s+")

_STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for
    from further get gets got had has have having he her here hers him his how i if in
    into is it its itself just me more most my no nor not now of off on once only or
    other our ours out over own please same she should so some such tell than that the
    their theirs them then there these they this those through to too under until up
    us very was we were what when where which while who whom why will with would you
    your yours many much explain describe show give list know need want
    """.split()
)
# Chinese question words, particles and function characters: cut out of Han runs
# before taking n-grams (they would be unmatched terms in every source sentence).
_HAN_DROP = re.compile(
    "有多少|是多少|多少|为什么|什么|怎么样|怎么|如何|哪些|哪个|哪里|是否|能否|可否|可以|请问|"
    "有没有|是不是|多长|多久|多大|几|[的了吗呢吧啊呀嘛是要有我你他她它们这那么个就都也还又在和与对为被把从到给让请]"
)


def _english_stemmer() -> Callable[[str], str]:
    try:
        import Stemmer
    except ImportError:
        return lambda word: word
    stemmer = Stemmer.Stemmer("english")
    return lambda word: str(stemmer.stemWord(word))


_local = threading.local()  # a PyStemmer object is not thread-safe: one per thread


def _stem(word: str) -> str:
    stem: Callable[[str], str] | None = getattr(_local, "stem", None)
    if stem is None:
        stem = _local.stem = _english_stemmer()
    return stem(word)


def terms(text: str) -> set[str]:
    """Index terms of ``text``: stemmed content words; Han characters and their bigrams."""
    out: set[str] = set()
    for m in _TERMS.finditer(text.casefold()):
        if m[1]:
            for run in _HAN_DROP.split(m[1]):
                out.update(run)
                out.update(run[i : i + 2] for i in range(len(run) - 1))
        elif m[0] not in _STOPWORDS:
            out.add(_stem(m[0]))
    return out


@dataclass(frozen=True)
class _Sentence:
    text: str  # as quoted: the source's words, whitespace runs collapsed
    source: Source
    rank: int  # the source's position in the request
    terms: frozenset[str]
    #: The heading, lead-in or table header above it, as plain text ("" for none).
    context: str = ""
    context_terms: frozenset[str] = frozenset()


def split_sentences(text: str) -> list[str]:
    """The quotable sentences of ``text``, each a verbatim slice (whitespace runs collapsed)."""
    return [unit for unit, quotable in _units(text) if quotable]


def _units(text: str) -> list[tuple[str, bool]]:
    """Every sentence-like piece of ``text`` in order, and whether it is worth quoting
    (headings are not, but they are kept as context for what follows)."""
    out: list[tuple[str, bool]] = []
    for a, b in sentence_spans(text):
        piece = text[a:b]
        lines = [piece] if len(piece) <= _MAX_SENTENCE_CHARS else piece.splitlines()
        for raw in lines:
            # A list item is never a heading, however short (the splitter drops its bullet).
            item = bool(BULLET.match(raw.strip())) or (raw is piece and _after_bullet(text, a))
            line = _SPACE.sub(" ", _SPACE_IN_HAN.sub("", BULLET.sub("", raw.strip())))
            if line:
                out.append((line, _substantial(line, list_item=item)))
    return out


_ENDS_SENTENCE = re.compile(r"[.!?。！？；;][\"'”’)\]」』）]*$")
# A lead-in ("...three levels of cover:") or a question (an FAQ's "How many ...?")
# introduces what follows: context for it, and never an answer itself.
_LEAD_IN = re.compile(r"[:：?？][\"'”’)\]」』）]*$")
_QUESTION = re.compile(r"[?？][\"'”’)\]」』）]*$")
MAX_CONTEXT_UNITS = 6
#: Shorter pieces without a number or closing punctuation are headings, not answers.
MIN_UNPUNCTUATED_WORDS = 7
_MAX_CONTEXT_CHARS = 300


def _with_context(units: list[tuple[str, bool]]) -> list[tuple[str, str]]:
    """Each quotable unit with its context: the run of unpunctuated units just above it
    (a heading, or a table's header and earlier rows), back to and including a lead-in
    ending in a colon. A table row alone ("Family  £64  £5,000") does not say what its
    numbers are; with its header it does."""
    out: list[tuple[str, str]] = []
    for i, (unit, quotable) in enumerate(units):
        if not quotable:
            continue
        above: list[str] = []
        for prev, _ in reversed(units[max(0, i - MAX_CONTEXT_UNITS) : i]):
            if _LEAD_IN.search(prev):
                above.append(prev)
                break
            if _ENDS_SENTENCE.search(prev):
                break
            above.append(prev)
        out.append((unit, " ".join(reversed(above))[-_MAX_CONTEXT_CHARS:]))
    return out


def _after_bullet(text: str, start: int) -> bool:
    """Whether the sentence starting at ``start`` had a list bullet before it."""
    line_start = text.rfind("\n", 0, start) + 1
    return bool(BULLET.match(text[line_start : start + 1].lstrip()))


def _substantial(sentence: str, *, list_item: bool = False) -> bool:
    """Worth quoting: four words, or three with a number, or four Han characters; and
    not a heading (short, no number, no closing punctuation: "Welcome to Northwind
    Lumen"). Headings and names alone say nothing; they serve as context instead."""
    han = sum(len(m[1]) for m in _TERMS.finditer(sentence) if m[1])
    words = sum(1 for m in _TERMS.finditer(sentence) if not m[1])
    has_number = any(ch.isdigit() for ch in sentence)
    size = words + han // 2
    if not (size >= (3 if has_number else 4) or han >= 4):
        return False
    if _QUESTION.search(sentence):
        return False
    heading = (
        size < MIN_UNPUNCTUATED_WORDS and not has_number and "|" not in sentence and not list_item
    )
    return not (heading and not _ENDS_SENTENCE.search(sentence))


class ExtractiveChatModel:
    """Quotes the best-supported source sentences; needs no model and no network."""

    name = "extractive"
    counts_tokens: ClassVar[bool] = False
    #: Quotes sources instead of writing: it cannot rewrite a follow-up question.
    generative: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_sentences: int = MAX_SENTENCES,
        max_sources: int = MAX_SOURCES,
        min_support: float | None = None,
        similarity: Similarity | None = None,
        semantic: bool = True,
    ) -> None:
        """``similarity`` (question and sentences to scores, e.g. embedding cosines) ranks
        sentences by meaning as well as by shared words, unless ``semantic`` is off."""
        self.max_sentences = max_sentences
        self.max_sources = max_sources
        self.similarity = similarity if semantic else None
        if min_support is None:
            min_support = MIN_SUPPORT if self.similarity is None else MIN_SUPPORT_SEMANTIC
        self.min_support = min_support

    def answer(
        self,
        question: str,
        sources: Sequence[Source],
        max_tokens: int,
        *,
        language: Language | None = None,
    ) -> tuple[str, FinishReason]:
        """The answer text, and "length" if ``max_tokens`` left out a chosen sentence.
        ``language`` (detected from ``question`` if None) picks the not-found reply."""
        text, finish, _ = self._answer(question, sources, max_tokens, language)
        return text, finish

    def _answer(
        self,
        question: str,
        sources: Sequence[Source],
        max_tokens: int,
        language: Language | None,
    ) -> tuple[str, FinishReason, float]:
        scored = self.score_sentences(question, sources)
        best = scored[0][0] if scored else 0.0
        picked = self._pick(scored)
        if not picked:
            lang = language or detect_language(question)
            return (NOT_FOUND_TEXT_ZH if lang == "zh" else NOT_FOUND_TEXT), "stop", best
        parts: list[str] = []
        for s in picked:
            marker = f" [{s.source.n}]"
            room = max_tokens - approx_tokens(" ".join(parts)) - approx_tokens(marker)
            if approx_tokens(s.text) <= room:
                parts.append(s.text + marker)
                continue
            if not parts and room > 0:  # the best sentence alone is too long: its start
                parts.append(truncate_tokens(s.text, room) + marker)
            return " ".join(parts), "length", best
        return " ".join(parts), "stop", best

    def _pick(self, scored: list[tuple[float, _Sentence]]) -> list[_Sentence]:
        if not scored:
            return []
        floor = max(self.min_support, RELATIVE_SUPPORT * scored[0][0])
        scored = [(score, s) for score, s in scored if score >= floor]
        # The best sentence of each source first, then second-best ones, ...
        seen: Counter[int] = Counter()
        order: list[tuple[int, float, int, _Sentence]] = []
        for i, (score, s) in enumerate(scored):
            order.append((seen[s.rank], -score, i, s))
            seen[s.rank] += 1
        chosen: list[_Sentence] = []
        for _, _, _, s in sorted(order, key=lambda x: x[:3]):
            if s.text not in {c.text for c in chosen}:
                chosen.append(s)
        return chosen[: self.max_sentences]

    def score_sentences(
        self, question: str, sources: Sequence[Source]
    ) -> list[tuple[float, _Sentence]]:
        """Every quotable sentence of the top sources with its support, best first.

        Lexical support is the IDF-weighted share of the question's terms in the
        sentence; terms found only in its context (heading, table header) count half.
        With ``similarity``, the support is the mean of that and the sentence's
        (with its context) semantic similarity to the question.
        """
        wanted = terms(question)
        sentences = [
            _Sentence(text, source, rank, frozenset(terms(text)), ctx, frozenset(terms(ctx)))
            for rank, source in enumerate(sources[: self.max_sources])
            for text, ctx in _with_context(_units(source.text))
        ]
        if not wanted or not sentences:
            return []
        df = Counter(t for s in sentences for t in s.terms & wanted)
        idf = {t: math.log(1 + (len(sentences) + 1) / (df[t] + 0.5)) for t in wanted}
        total = sum(idf.values())

        def lexical(s: _Sentence) -> float:
            own = s.terms & wanted
            near = (s.context_terms & wanted) - own
            return (sum(idf[t] for t in own) + CONTEXT_WEIGHT * sum(idf[t] for t in near)) / total

        scores = [lexical(s) for s in sentences]
        if self.similarity is not None:
            texts = [f"{s.context} {s.text}".strip() for s in sentences]
            semantic = self.similarity(question, texts)
            scores = [(lex + sem) / 2 for lex, sem in zip(scores, semantic, strict=True)]
        return sorted(zip(scores, sentences, strict=True), key=lambda x: (-x[0], x[1].rank))

    def complete(self, request: ChatRequest) -> Completion:
        start = time.monotonic()
        text, finish, best = self._answer(
            request.question, request.sources, request.params.max_tokens, request.language
        )
        elapsed = time.monotonic() - start
        return Completion(
            text=text,
            finish_reason=finish,
            model=self.name,
            completion_tokens=approx_tokens(text),
            ttft_s=elapsed,
            total_s=elapsed,
            support=round(best, 4),
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """The same answer, word by word (Han character by character)."""
        completion = self.complete(request)
        for m in _STREAM_PIECE.finditer(completion.text):
            yield StreamEvent(delta=m[0])
        yield StreamEvent(done=True, completion=completion)
