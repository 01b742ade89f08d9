"""Exceptions raised by ingestion. Every one carries a message fit to show an admin.

IngestionError
 ├── UnsupportedFormat   the content is not a type Lantern can read (or lies about its type)
 ├── FileTooLarge        over the configured size limit, or a zip that expands past it
 ├── EmptyDocument       no bytes, or a parser found no text in a non-empty document
 └── ParseError          the file claims a supported type but is corrupt
      └── EncryptedDocument  password-protected; Lantern does not guess passwords
"""

from __future__ import annotations


class IngestionError(Exception):
    """Base class; ``str(err)`` is the reason shown on the failed job."""


class UnsupportedFormat(IngestionError):
    pass


class FileTooLarge(IngestionError):
    pass


class EmptyDocument(IngestionError):
    pass


class ParseError(IngestionError):
    pass


class EncryptedDocument(ParseError):
    pass


def file_too_large(size: int, limit: int) -> FileTooLarge:
    """The error for an upload over the size limit, with the setting that raises it."""
    return FileTooLarge(
        f"file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB "
        "(raise LANTERN_INGESTION__MAX_FILE_MB to accept it)"
    )


class JobQueueError(Exception):
    """The configured job queue cannot be set up (unknown kind, missing dependency)."""
