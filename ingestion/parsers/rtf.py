"""RTF parser on striprtf: one paragraph per ``\\par``, one page.

striprtf decodes ``\\'xx`` bytes in the document's code page (``\\ansicpg``,
including multi-byte ones such as cp932) and in a font's ``\\fcharset``, and
``\\uN`` escapes; pictures and other destinations are skipped. Raw 8-bit bytes
(outside the 7-bit RTF norm, but some writers emit them) are read in the
``\\ansicpg`` code page too. ``\\line`` is kept as a line break inside its
paragraph. The ``\\info`` title becomes the document title. Runs of 1,024+ hex
digits (embedded pictures and objects) are dropped before striprtf walks the text.
"""

from __future__ import annotations

import codecs
import logging
import re

from striprtf.striprtf import rtf_to_text

from ingestion.detect import RTF_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.parsers._blocks import DocumentBuilder
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

_CODE_PAGE = re.compile(rb"\\ansicpg(\d+)")
# \line is a line break inside a paragraph; striprtf would give "\n", like \par. Swap it
# for \u8232 (LINE SEPARATOR), which the block cleaner turns back into "\n".
_LINE = re.compile(r"(?<!\\)\\line(?![a-zA-Z])\s?")
# Picture and object data: hex digits by the megabyte, which striprtf would walk one
# character at a time (~0.5 s per MB) only to skip them. No prose is 1,024 hex digits.
_HEX_RUN = re.compile(r"[0-9a-fA-F\r\n]{1024,}")
_TITLE = re.compile(r"\{\\title\s?((?:[^{}\\]|\\.)*)\}")


class RtfParser:
    """Parses ``.rtf``; an RTF with no text gives ``EmptyDocument``."""

    mime_types: tuple[str, ...] = (RTF_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data.strip():
            raise EmptyDocument(f"{filename} is empty")
        encoding = _code_page(data[:4096])
        source = data.decode(encoding, errors="replace")
        try:
            text = _strip(_LINE.sub(r"\\u8232?", _HEX_RUN.sub("", source)), encoding)
            title_match = _TITLE.search(source[:65536])
            title = (
                _strip("{\\rtf1 " + title_match.group(1) + "}", encoding) if title_match else None
            )
        except (ValueError, IndexError, LookupError) as e:  # striprtf on malformed control words
            raise ParseError(f"{filename} is not a valid RTF file: {e}") from e
        builder = DocumentBuilder()
        for paragraph in text.split("\n"):
            builder.add("text", paragraph)
        if not builder.has_text:
            raise EmptyDocument(f"{filename}: the RTF document contains no text (only pictures?)")
        return builder.build(mime=RTF_MIME, paginated=False, title=title)


def _strip(source: str, encoding: str) -> str:
    text = rtf_to_text(source, encoding=encoding, errors="replace")  # type: ignore[no-untyped-call]
    return str(text)


def _code_page(head: bytes) -> str:
    match = _CODE_PAGE.search(head)
    if match is None:
        return "cp1252"
    encoding = f"cp{int(match.group(1))}"
    try:
        codecs.lookup(encoding)
    except LookupError:
        return "cp1252"
    return encoding
