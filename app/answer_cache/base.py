"""The answer cache's storage: strings by key, each with a time to live."""

from __future__ import annotations

from typing import Protocol


class CacheUnavailable(Exception):
    """The store did not answer (Redis down, a timeout): treat it as a miss."""


class CacheStore(Protocol):
    """A key-value store with expiry. ``get`` and ``set`` raise ``CacheUnavailable``
    when the store cannot be reached; nothing else."""

    #: Where entries live, for logs and ``/health`` (never a password).
    name: str

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, None when absent or expired."""

    def set(self, key: str, value: str, *, ttl_s: int) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds."""

    def close(self) -> None:
        """Release connections (idempotent)."""
