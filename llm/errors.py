"""Exceptions raised by chat-model backends.

LLMError
 └── LLMBackendError        the model server or library failed
      ├── LLMUnavailable    cannot reach / load the model (server down, file missing)
      └── LLMTimeout        the total time budget ran out
"""

from __future__ import annotations


class LLMError(Exception):
    pass


class LLMBackendError(LLMError):
    pass


class LLMUnavailable(LLMBackendError):
    pass


class LLMTimeout(LLMBackendError):
    pass
