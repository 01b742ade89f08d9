"""Crash-safe file writes shared by the on-disk indexes (vectors and BM25).

Writes go to a temp file in the same directory, are fsynced and then renamed over
the target, so a reader sees either the old file or the new one, never a torn write.
Files no index references any more (and temp files left by a crash) are removed
best effort: loading ignores them, so a failed removal is retried later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"


def fsync_directory(directory: Path) -> None:
    """Make renames inside ``directory`` durable (no-op where the OS cannot)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` all-or-nothing: temp file in the same dir, fsync, ``os.replace``.

    On any failure the temp file is removed (best effort) and ``path`` is untouched.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, indent=2, sort_keys=True).encode("utf-8")

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)


def remove_stale_files(directory: Path, *, prefix: str, keep: set[str]) -> bool:
    """Delete ``prefix*`` files not in ``keep`` and temp files left by a crashed write.

    Returns False when some file could not be removed (the caller tries again later).
    """
    names = [
        p.name
        for p in directory.iterdir()
        if p.name.startswith((prefix, TEMP_PREFIX)) and p.name not in keep and p.is_file()
    ]
    return remove_files(directory, names)


def remove_files(directory: Path, names: Iterable[str]) -> bool:
    """Delete files no longer referenced; False when one could not be removed."""
    removed_all = True
    for name in names:
        path = directory / name
        try:
            path.unlink(missing_ok=True)
        except OSError as e:  # harmless: unreferenced files are ignored when loading
            logger.warning("could not remove stale index file %s: %s", path, e)
            removed_all = False
    return removed_all
