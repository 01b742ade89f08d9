"""Which parser reads which MIME type."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ingestion.errors import UnsupportedFormat
from ingestion.ocr import OFF_HINT, Ocr, RapidOcrEngine, ocr_available
from ingestion.parsers.base import Parser
from ingestion.parsers.delimited import DelimitedParser
from ingestion.parsers.docx import DocxParser
from ingestion.parsers.eml import EmlParser
from ingestion.parsers.epub import EpubParser
from ingestion.parsers.html import HtmlParser
from ingestion.parsers.image import ImageParser
from ingestion.parsers.markdown import MarkdownParser
from ingestion.parsers.msg import MsgParser
from ingestion.parsers.opendocument import OpenDocumentParser
from ingestion.parsers.pdf import OCR_DPI, PdfParser
from ingestion.parsers.pptx import PptxParser
from ingestion.parsers.rtf import RtfParser
from ingestion.parsers.spreadsheet import SpreadsheetParser
from ingestion.parsers.text import TextParser
from ingestion.safety import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED

logger = logging.getLogger(__name__)


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
    ocr: bool | Ocr = True,
    ocr_dpi: int = OCR_DPI,
) -> ParserRegistry:
    """The offline-safe parsers: PDF, DOCX, PPTX, spreadsheets (XLSX/XLSM/XLSB/XLS/ODS),
    CSV/TSV, ODT/ODP, EPUB, RTF, HTML, Markdown, plain text, images, e-mail (EML, MSG).

    The zip limits guard every zip-based format (OOXML, OpenDocument, EPUB) against
    zip bombs. ``ocr``: True reads scans and pictures with RapidOCR when it is
    installed (else they fail with the reason it is not), False turns OCR off, or an
    ``Ocr`` to use.
    """
    engine, off_reason = _ocr(ocr)
    up, ratio = max_zip_uncompressed, max_zip_ratio
    return ParserRegistry(
        [
            PdfParser(ocr=engine, ocr_dpi=ocr_dpi, off_reason=off_reason),
            DocxParser(max_uncompressed=up, max_ratio=ratio, ocr=engine, off_reason=off_reason),
            PptxParser(max_uncompressed=up, max_ratio=ratio, ocr=engine, off_reason=off_reason),
            SpreadsheetParser(max_uncompressed=up, max_ratio=ratio),
            OpenDocumentParser(max_uncompressed=up, max_ratio=ratio),
            EpubParser(max_uncompressed=up, max_ratio=ratio),
            DelimitedParser(),
            RtfParser(),
            HtmlParser(),
            MarkdownParser(),
            TextParser(),
            ImageParser(engine, off_reason=off_reason),
            EmlParser(),
            MsgParser(),
        ]
    )


def _ocr(ocr: bool | Ocr) -> tuple[Ocr | None, str]:
    if isinstance(ocr, Ocr):
        return ocr, OFF_HINT
    if not ocr:
        return None, OFF_HINT
    missing = ocr_available()
    if missing is not None:
        logger.warning("%s", missing)
        return None, missing
    return Ocr(RapidOcrEngine()), OFF_HINT
