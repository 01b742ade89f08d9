"""The languages an embedding model was trained on, by its name (settings can override).

Checked in order, first match wins, on the lower-cased model name or path. A model
this table does not know is taken as multilingual, which keeps hybrid search as it
was: set ``LANTERN_EMBEDDING__LANGUAGES`` to declare what it covers.
"""

from __future__ import annotations

from retrieval.language import MULTILINGUAL

_TABLE: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    # Multilingual models (name fragments that mark them).
    (
        ("bge-m3", "multilingual", "labse", "jina-embeddings-v3", "gte-qwen", "qwen3-embedding"),
        MULTILINGUAL,
    ),
    (("bge-large-zh", "bge-base-zh", "bge-small-zh", "text2vec", "m3e-"), frozenset({"zh"})),
    # English models: bge v1.5 en, MiniLM, mpnet, e5 / gte / nomic English releases.
    (
        ("bge-", "minilm", "mpnet", "e5-", "gte-", "nomic-embed", "all-distilroberta"),
        frozenset({"en"}),
    ),
)


def model_languages(model_name: str) -> frozenset[str]:
    """ISO 639-1 codes of the languages ``model_name`` covers, or ``MULTILINGUAL``."""
    name = model_name.lower()
    for fragments, languages in _TABLE:
        if any(f in name for f in fragments):
            return languages
    return MULTILINGUAL
