"""Text analysis for the lexical index: the same pipeline for documents and queries.

``text -> NFKC -> casefold -> runs``: a run of Han characters is segmented by jieba
(search mode: words and the shorter words inside them, so "中华人民共和国" also
yields "中华", "人民", "共和国"); any other run of letters and digits is a word,
split at everything else (punctuation, ``_``, spaces) and with a possessive ``'s``
dropped. Stop-words are removed and words are stemmed with Snowball (PyStemmer), so
"policies" and "policy" meet. Stop-words are bm25s's list for the language (for
English, Lucene's 33 words); for Chinese only particles and a few function
characters: bm25s's Chinese list also drops content words such as 安全 "safety",
规定 "regulation" or 问题 "problem", so "安全规定" would find nothing. IDF takes care
of the rest, as in Lucene's CJK analyzers. The output depends only on the text and
the settings, which the index records (``fingerprint``) so that documents and
queries are never analysed differently.

jieba is loaded on the first Han text only (its dictionary costs ~0.8 s and ~50 MB),
once per process, quietly, with its dictionary cache in ``cache_dir`` (else the
system temp directory). Its dictionary ships in the wheel, so this works offline.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import tempfile
import threading
import unicodedata
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from retrieval.errors import LexicalIndexError

logger = logging.getLogger(__name__)

#: Bump when the pipeline changes what tokens it produces: indexes record it and
#: refuse to open under another version (``lantern reindex`` rebuilds them).
ANALYZER_VERSION = 1
ANALYZER_NAME = "lantern-standard"
MAX_TOKEN_CHARS = 64  # longer "words" are hashes, base64 or URLs run together: dropped

# Han ideographs (CJK Unified Ideographs, Extension A, Compatibility, Extensions B-H).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
_HAN_CHAR = re.compile(f"[{_HAN}]")
_WORDS = re.compile(r"\w+")
_RUNS = re.compile(rf"([{_HAN}]+)|([^\W{_HAN}]+)")
_POSSESSIVE = re.compile(r"['’]s\b")  # the company's -> the company
# Apostrophes go (don't -> dont, students' -> students); "_" splits words.
_SEPARATORS = {ord("'"): None, ord("’"): None, ord("_"): " "}
_STEM_CACHE_SIZE = 100_000  # per thread; cleared when full

# Snowball algorithm -> bm25s stop-word list (languages for which bm25s ships one).
_STOPWORD_LISTS = {
    "english": "STOPWORDS_EN",
    "german": "STOPWORDS_GERMAN",
    "dutch": "STOPWORDS_DUTCH",
    "french": "STOPWORDS_FRENCH",
    "spanish": "STOPWORDS_SPANISH",
    "portuguese": "STOPWORDS_PORTUGUESE",
    "italian": "STOPWORDS_ITALIAN",
    "russian": "STOPWORDS_RUSSIAN",
    "swedish": "STOPWORDS_SWEDISH",
    "norwegian": "STOPWORDS_NORWEGIAN",
    "turkish": "STOPWORDS_TURKISH",
    "danish": "STOPWORDS_DANISH",
}
LANGUAGES = tuple(sorted(_STOPWORD_LISTS))
_HAN_STOPWORDS = frozenset("的地得了着之吗呢吧啊呀嘛是在和与及或也都就而把被")

_jieba_lock = threading.Lock()
_jieba_tokenizer: Any = None


class Analyzer:
    """Turns text into index terms; thread-safe and deterministic.

    ``language`` picks the Snowball stemmer and the stop-word list for text outside
    Han runs; ``stopwords=False`` keeps every word (Chinese stop-words included).
    """

    def __init__(
        self, *, language: str = "english", stopwords: bool = True, cache_dir: Path | None = None
    ) -> None:
        if language not in _STOPWORD_LISTS:
            raise LexicalIndexError(
                f"unsupported analyzer language {language!r}; choose one of {', '.join(LANGUAGES)}"
            )
        self.language = language
        self.stopwords = stopwords
        self.cache_dir = cache_dir
        self._words_stop: frozenset[str] = frozenset()
        self._han_stop: frozenset[str] = frozenset()
        if stopwords:
            from bm25s import stopwords as lists

            self._words_stop = frozenset(getattr(lists, _STOPWORD_LISTS[language]))
            self._han_stop = _HAN_STOPWORDS
        self._local = threading.local()  # PyStemmer objects must not be shared by threads

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What decides the tokens: an index built under another fingerprint is refused."""
        return {
            "name": ANALYZER_NAME,
            "version": ANALYZER_VERSION,
            "language": self.language,
            "stopwords": self.stopwords,
            "cjk": "jieba-search",
        }

    @staticmethod
    def library_versions() -> dict[str, str]:
        """Versions of the libraries behind the tokens (recorded, checked only loosely)."""
        versions = {}
        for dist in ("jieba", "PyStemmer"):
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[dist] = "missing"
        return versions

    def tokens(self, text: str) -> list[str]:
        """The index terms of ``text``, in text order (repeats kept: they are term frequency)."""
        normal = unicodedata.normalize("NFKC", text).casefold()
        normal = _POSSESSIVE.sub("", normal).translate(_SEPARATORS)
        stop = self._words_stop
        if _HAN_CHAR.search(normal) is None:  # the common case, at the regex engine's speed
            words = [w for w in _WORDS.findall(normal) if w not in stop]
            return self._stem([w for w in words if len(w) <= MAX_TOKEN_CHARS])
        out: list[str] = []
        words, positions = [], []
        for han, word in _RUNS.findall(normal):
            if han:
                out.extend(t for t in _segment(han, self.cache_dir) if t not in self._han_stop)
            elif word not in stop and len(word) <= MAX_TOKEN_CHARS:
                positions.append(len(out))
                out.append(word)
                words.append(word)
        for position, stem in zip(positions, self._stem(words), strict=True):
            out[position] = stem
        return out

    def tokens_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokens(text) for text in texts]

    def _stem(self, words: list[str]) -> list[str]:
        """Snowball stems, through a per-thread cache (PyStemmer objects are not thread-safe)."""
        local = self._local
        cache: dict[str, str] | None = getattr(local, "cache", None)
        if cache is None:
            try:
                import Stemmer
            except ImportError as e:
                raise LexicalIndexError(
                    "the lexical index needs PyStemmer, which is not installed; reinstall Lantern"
                ) from e
            local.stemmer, cache = Stemmer.Stemmer(self.language), {}
            local.cache = cache
        new = [w for w in set(words) if w not in cache]
        if new:
            if len(cache) + len(new) > _STEM_CACHE_SIZE:
                cache.clear()
                new = list(set(words))  # the words that were cached are gone too
            cache.update(zip(new, local.stemmer.stemWords(new), strict=True))
        return [cache[w] for w in words]


def _segment(run: str, cache_dir: Path | None) -> list[str]:
    return [t for t in _jieba(cache_dir).cut_for_search(run, HMM=True) if t.strip()]


def _jieba(cache_dir: Path | None) -> Any:
    """The process's jieba tokenizer, built on first use (its own instance, not jieba.dt)."""
    global _jieba_tokenizer
    if _jieba_tokenizer is not None:
        return _jieba_tokenizer
    with _jieba_lock:
        if _jieba_tokenizer is not None:
            return _jieba_tokenizer
        try:
            with warnings.catch_warnings():  # old setuptools warn about pkg_resources
                warnings.simplefilter("ignore")
                import jieba
        except ImportError as e:
            raise LexicalIndexError(
                "the lexical index needs jieba for Chinese text, which is not installed; "
                "reinstall Lantern"
            ) from e
        jieba.setLogLevel(logging.WARNING)  # it prints its progress to stderr at DEBUG
        directory = cache_dir or Path(tempfile.gettempdir())
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            logger.warning("jieba cache directory %s is not usable: %s", directory, e)
        tokenizer = jieba.Tokenizer()
        tokenizer.tmp_dir = str(directory)
        try:
            tokenizer.initialize()
        except (OSError, ValueError) as e:
            raise LexicalIndexError(f"cannot load jieba's dictionary: {e}") from e
        _jieba_tokenizer = tokenizer
        return tokenizer
