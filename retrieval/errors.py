"""Exceptions raised by retrieval backends.

RetrievalError
 ├── EmbeddingError       a model failed to load or encode
 ├── LexicalIndexError    the BM25 index failed to read, write or search
 ├── RerankError          a cross-encoder failed to load or score
 └── VectorStoreError     a vector index failed to read, write or search
      └── IndexMismatchError  the index was built with another embedding model/dimension
"""

from __future__ import annotations


class RetrievalError(Exception):
    pass


class EmbeddingError(RetrievalError):
    pass


class LexicalIndexError(RetrievalError):
    pass


class RerankError(RetrievalError):
    pass


class VectorStoreError(RetrievalError):
    pass


class IndexMismatchError(VectorStoreError):
    pass
