"""Plain-text parser: decode (BOM, UTF-8, then charset-normalizer), split paragraphs
on blank lines, one page."""

from __future__ import annotations

import logging
import re

from ingestion.detect import TEXT_MIME
from ingestion.errors import EmptyDocument
from ingestion.parsers._blocks import DocumentBuilder, normalize_newlines
from ingestion.parsers._decode import decode_text
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


class TextParser:
    """Parses ``text/plain``; raises ``ParseError`` when the encoding cannot be detected."""

    mime_types: tuple[str, ...] = (TEXT_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        text = normalize_newlines(decode_text(data))
        builder = DocumentBuilder()
        for paragraph in _PARAGRAPH_BREAK.split(text):
            builder.add("text", paragraph)
        if not builder.has_text:
            raise EmptyDocument(f"{filename} contains only whitespace")
        return builder.build(mime=TEXT_MIME, paginated=False)
