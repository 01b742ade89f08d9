"""Guards run on untrusted uploads before a format library touches them.

``check_zip`` reads only the zip central directory: it never decompresses
anything, so a zip bomb is refused in microseconds. Python's ``zipfile`` (used
by python-docx and python-pptx) never inflates a member past the size its
directory entry declares, so the declared sizes are a real upper bound.
"""

from __future__ import annotations

import io
import zipfile

from ingestion.errors import EmptyDocument, FileTooLarge, ParseError

_MB = 1024 * 1024


def check_zip(
    data: bytes,
    *,
    max_uncompressed: int,
    max_ratio: float = 100.0,
    max_members: int = 10000,
    ratio_floor: int = 16 * _MB,
    max_member: int | None = None,
    name: str = "the archive",
) -> None:
    """Refuse a zip that would expand past ``max_uncompressed`` bytes, has more
    than ``max_members`` entries, has one entry over ``max_member`` bytes, or
    expands more than ``max_ratio`` times its own size (only once it expands past
    ``ratio_floor``, so a small but very compressible document is still accepted).

    ``name`` (the upload's file name) starts the messages. Raises ``FileTooLarge``
    for a likely bomb and ``ParseError`` when ``data`` is not a readable zip.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise ParseError(f"the zip archive is damaged or truncated ({e})") from e
    if len(members) > max_members:
        raise FileTooLarge(
            f"{name} has {len(members)} entries (limit {max_members}); refusing a possible zip bomb"
        )
    total = sum(member.file_size for member in members)
    if total > max_uncompressed:
        raise FileTooLarge(
            f"{name} expands to {_mb(total)} MB (limit {_mb(max_uncompressed)} MB); "
            "refusing a possible zip bomb"
        )
    biggest = max(members, key=lambda m: m.file_size, default=None)
    if max_member is not None and biggest is not None and biggest.file_size > max_member:
        raise FileTooLarge(
            f"{name}: its part {biggest.filename} expands to {_mb(biggest.file_size)} MB "
            f"(limit {_mb(max_member)} MB for one part); split the document into smaller files"
        )
    ratio = total / max(len(data), 1)
    if total > ratio_floor and ratio > max_ratio:
        raise FileTooLarge(
            f"{name} expands to {_mb(total)} MB from {_mb(len(data))} MB "
            f"(ratio {ratio:.0f}, limit {max_ratio:.0f}); refusing a possible zip bomb"
        )


def _mb(size: int) -> str:
    return f"{size / _MB:.1f}".removesuffix(".0")


DEFAULT_MAX_UNCOMPRESSED = 512 * 1024 * 1024
DEFAULT_MAX_RATIO = 200.0
#: Largest single part (``word/document.xml``, a slide) an OOXML parser will load: its
#: XML tree costs about ten times its size in memory, and parsing ~0.5 s per MB.
DEFAULT_MAX_PART = 64 * 1024 * 1024


class ZipLimits:
    """The zip-bomb guard that OOXML parsers (DOCX, PPTX) run before opening a file."""

    def __init__(
        self,
        *,
        max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
        max_ratio: float = DEFAULT_MAX_RATIO,
        max_part: int = DEFAULT_MAX_PART,
    ) -> None:
        self.max_uncompressed = max_uncompressed
        self.max_ratio = max_ratio
        self.max_part = max_part

    def check(self, data: bytes, *, filename: str, kind: str) -> None:
        """Raise EmptyDocument, FileTooLarge or ParseError ("not a valid KIND file")."""
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        try:
            check_zip(
                data,
                max_uncompressed=self.max_uncompressed,
                max_ratio=self.max_ratio,
                max_member=self.max_part,
                name=filename,
            )
        except ParseError as e:
            raise ParseError(f"{filename} is not a valid {kind} file: {e}") from e


class ZipGuarded:
    """Base of the parsers of zip formats (OOXML, OpenDocument, EPUB): ``zip_limits``
    is the zip-bomb guard each runs before opening a file."""

    def __init__(
        self,
        *,
        max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
        max_ratio: float = DEFAULT_MAX_RATIO,
        max_part: int = DEFAULT_MAX_PART,
    ) -> None:
        self.zip_limits = ZipLimits(
            max_uncompressed=max_uncompressed, max_ratio=max_ratio, max_part=max_part
        )
