"""Content-addressed blob store: uploaded files kept by sha256 under the data dir."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ingestion.errors import IngestionError


class BlobNotFound(IngestionError):
    pass


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """``put`` is idempotent and atomic: a blob is either complete on disk or absent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        digest = sha256_of(data)
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError as e:
            raise BlobNotFound(
                f"the stored file {sha256[:12]}... is missing from the blob store"
            ) from e

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def mtime(self, sha256: str) -> float:
        return self.path(sha256).stat().st_mtime

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[str]:
        for p in self.root.glob("??/??/*"):
            if not p.name.startswith(".tmp-"):
                yield p.name

    def remove_temp_files(self) -> int:
        """Delete partial writes left by a crash."""
        n = 0
        for p in self.root.glob("??/??/.tmp-*"):
            p.unlink(missing_ok=True)
            n += 1
        return n
