"""Text that every database Lantern runs on can store, checked the same way everywhere.

PostgreSQL refuses NUL (U+0000) in text, and no database can store a lone UTF-16
surrogate (U+D800..U+DFFF: it has no UTF-8 encoding; Python makes them out of file
names and arguments that are not UTF-8). SQLite would keep a NUL, so the same input
would work on one database and fail on the other. Lantern refuses both wherever
text comes in (API bodies and parameters, the database engine for the UI and the
CLI), with the same ``UnstorableText`` error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.errors import UnstorableText

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Path = tuple[str | int, ...]


def problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "must not contain a NUL character (U+0000)"
    return f"must not contain a lone surrogate (U+{ord(char):04X}); it is not valid Unicode"


def find(value: Any, path: Path = (), *, into_mappings: bool = True) -> tuple[Path, str] | None:
    """The first string in ``value`` (strings, mapping keys and values, sequences,
    nested) that cannot be stored: its path and the reason. ``into_mappings=False``
    leaves mappings out (each is checked on its own, as a nested request model is)."""
    if isinstance(value, str):
        reason = problem(value)
        return (path, reason) if reason else None
    if isinstance(value, Mapping) and into_mappings:
        for key, item in value.items():
            here = (*path, key if isinstance(key, str | int) else str(key))
            found = find(key, here) or find(item, here)
            if found:
                return found
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            found = find(item, (*path, i), into_mappings=into_mappings)
            if found:
                return found
    return None


def repaired(value: Any) -> Any:
    """``value`` with every unstorable character replaced by U+FFFD: for records that
    must be written whatever the input was (the audit log), never for user data."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {repaired(k): repaired(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [repaired(v) for v in value]
    return value


def describe(path: Path, reason: str) -> str:
    """``field.0.key: reason``, itself storable (a bad mapping key is in the path)."""
    where = ".".join(repaired(str(p)) for p in path)
    return f"{where}: {reason}" if where else reason


def check(**fields: Any) -> None:
    """Raise ``UnstorableText`` naming the first field whose text cannot be stored."""
    found = find(fields)
    if found:
        raise UnstorableText(describe(*found))
