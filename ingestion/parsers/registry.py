"""Which parser reads which MIME type."""

from __future__ import annotations

from collections.abc import Iterable

from ingestion.errors import UnsupportedFormat
from ingestion.parsers.base import Parser
from ingestion.parsers.docx import DocxParser
from ingestion.parsers.eml import EmlParser
from ingestion.parsers.html import HtmlParser
from ingestion.parsers.markdown import MarkdownParser
from ingestion.parsers.msg import MsgParser
from ingestion.parsers.pdf import PdfParser
from ingestion.parsers.pptx import PptxParser
from ingestion.parsers.text import TextParser
from ingestion.safety import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED


class ParserRegistry:
    """Maps MIME types to parsers; a later registration for a type replaces an earlier one."""

    def __init__(self, parsers: Iterable[Parser] = ()) -> None:
        self._parsers: dict[str, Parser] = {}
        for parser in parsers:
            self.register(parser)

    def register(self, parser: Parser) -> None:
        for mime in parser.mime_types:
            self._parsers[mime] = parser

    @property
    def supported_types(self) -> tuple[str, ...]:
        return tuple(sorted(self._parsers))

    def __contains__(self, mime: object) -> bool:
        return mime in self._parsers

    def get(self, mime: str) -> Parser:
        """The parser for ``mime``; ``UnsupportedFormat`` listing the supported types if none."""
        try:
            return self._parsers[mime]
        except KeyError:
            supported = ", ".join(self.supported_types) or "none"
            raise UnsupportedFormat(f"no parser for {mime}; supported types: {supported}") from None


def default_registry(
    *,
    max_zip_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
    max_zip_ratio: float = DEFAULT_MAX_RATIO,
) -> ParserRegistry:
    """The offline-safe parsers: PDF, DOCX, PPTX, HTML, Markdown, plain text, e-mail
    (EML, MSG).

    The zip limits guard DOCX/PPTX against zip bombs.
    """
    return ParserRegistry(
        [
            PdfParser(),
            DocxParser(max_uncompressed=max_zip_uncompressed, max_ratio=max_zip_ratio),
            PptxParser(max_uncompressed=max_zip_uncompressed, max_ratio=max_zip_ratio),
            HtmlParser(),
            MarkdownParser(),
            TextParser(),
            EmlParser(),
            MsgParser(),
        ]
    )
