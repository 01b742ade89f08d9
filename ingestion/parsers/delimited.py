"""CSV and TSV parser on the stdlib ``csv`` module: the rows as self-contained
lines that carry their column headers (see ``_sheets``), one page.

The text is decoded like TXT (BOM, UTF-8, then charset-normalizer). The
delimiter is sniffed from the first 64 KiB among ``,`` ``;`` tab and ``|``
(Excel in many European locales writes ``;``); if sniffing fails, ``.tsv``
files use tabs and everything else commas.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import PurePath

from ingestion.detect import CSV_MIME, TSV_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.parsers._blocks import DocumentBuilder
from ingestion.parsers._decode import decode_text
from ingestion.parsers._sheets import add_sheet
from ingestion.parsers.base import ParsedDocument

logger = logging.getLogger(__name__)

_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"
_TAB_SUFFIXES = frozenset({".tsv", ".tab"})


class DelimitedParser:
    """Parses ``text/csv`` and ``text/tab-separated-values``."""

    mime_types: tuple[str, ...] = (CSV_MIME, TSV_MIME)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data.strip():
            raise EmptyDocument(f"{filename} is empty")
        text = decode_text(data)
        tabbed = PurePath(filename).suffix.lower() in _TAB_SUFFIXES
        delimiter = _sniff(text, default="\t" if tabbed else ",")
        builder = DocumentBuilder()
        try:
            rows = add_sheet(
                builder, csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            )
        except csv.Error as e:
            if "field limit" in str(e):
                raise ParseError(
                    f"{filename}: a cell is longer than {csv.field_size_limit():,} characters; "
                    "is it really a CSV file? (upload long text as .txt)"
                ) from e
            raise ParseError(f"{filename} is not a readable CSV file: {e}") from e
        if not builder.has_text:
            raise EmptyDocument(f"{filename}: the table has no cell text")
        logger.debug("parsed delimited file with %d rows (delimiter %r)", rows, delimiter)
        return builder.build(mime=TSV_MIME if tabbed else CSV_MIME, paginated=False)


def _sniff(text: str, *, default: str) -> str:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut-off last line misleads the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return default
