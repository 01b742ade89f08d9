"""Turning the bytes of a text format (TXT, Markdown, HTML) into ``str``.

Order: a byte-order mark wins, then an encoding the document declares (HTML
``<meta charset>``), then strict UTF-8, then charset-normalizer's best guess.
"""

from __future__ import annotations

import codecs
import logging

from charset_normalizer import from_bytes

from ingestion.errors import ParseError

logger = logging.getLogger(__name__)

# Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding named by a byte-order mark and the mark's length, if any."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def decode_text(data: bytes, *, declared: str | None = None) -> str:
    """Decode ``data`` or raise ``ParseError("could not detect the text encoding ...")``."""
    bom = bom_encoding(data)
    if bom is not None:
        encoding, skip = bom
        try:
            return data[skip:].decode(encoding)
        except UnicodeDecodeError as e:
            raise ParseError(f"the text claims to be {encoding} but is not: {e.reason}") from e
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            logger.info("declared charset %r does not decode the document; guessing", declared)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise ParseError(
            "could not detect the text encoding; save the file as UTF-8 and upload it again"
        )
    logger.debug("guessed text encoding %s", best.encoding)
    return str(best)
