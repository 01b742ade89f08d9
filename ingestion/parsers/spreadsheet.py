"""Spreadsheet parser on python-calamine (Rust calamine): XLSX, XLSM, XLSB, ODS, XLS.

Each visible sheet is a heading (its name, the section path of its rows) and
table elements of self-contained row lines (see ``_sheets``). Formulas give the
values Excel last computed and saved; numbers and dates are shown as a user
would read them (``10``, ``2024-03-01``), though not in the cell's own number
format (a 25% cell reads ``0.25``). The title comes from the document properties.

One page for the whole workbook (``paginated=False``): a workbook has no pages a
user could turn to, and citations name the sheet through its section instead.
Hidden sheets are skipped: they hold lookup tables and scratch work a reader of
the workbook never sees, and an answer citing them could not be checked.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zipfile
from typing import Any

import python_calamine
from lxml import etree
from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from ingestion.detect import ODS_MIME, XLS_MIME, XLSB_MIME, XLSM_MIME, XLSX_MIME, detect_type
from ingestion.errors import (
    EmptyDocument,
    EncryptedDocument,
    FileTooLarge,
    IngestionError,
    ParseError,
)
from ingestion.parsers._blocks import DocumentBuilder
from ingestion.parsers._odf import NS, meta_title, odf_encrypted, parse_xml, tag
from ingestion.parsers._sheets import add_sheet
from ingestion.parsers.base import ParsedDocument
from ingestion.safety import ZipGuarded

logger = logging.getLogger(__name__)

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A password-protected OOXML file is an OLE2 container with these two streams.
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")
_PROTECT_ADVICE = "remove the password in Excel (File > Info > Protect Workbook) and upload again"
#: calamine holds a sheet as a dense grid of 32-byte cells spanning its first to last
#: used cell: two stray cells at A1 and ZZ1000000 ask for ~20 GB, and a failed Rust
#: allocation aborts the whole process. Sheets spanning more cells are refused first.
#: At the limit (e.g. 100,000 rows by 50 columns, all filled) parsing peaks near 1 GB.
MAX_SHEET_CELLS = 5_000_000
# Cells carry an r="B7" reference, rows an r="7" (either quote, spaces around "=").
# The element name is not matched (4x faster: the regex starts from a literal); another
# attribute ending in "r" can only widen the span found, never hide a cell.
_XLSX_CELL_REF = re.compile(rb"r\s*=\s*[\"']([A-Za-z]{1,3})([0-9]{1,7})[\"']")
_XLSX_ROW_REF = re.compile(rb"r\s*=\s*[\"']([0-9]{1,7})[\"']")
_XLSX_CELL = re.compile(rb"<(?:\w+:)?c[\s>/]")
_XLSB_DIMENSION = b"\x94\x01\x10"  # BrtWsDim record: type 148, 16 bytes of bounds


class SpreadsheetParser(ZipGuarded):
    """Parses Excel and OpenDocument workbooks; refuses zip bombs before calamine opens them."""

    mime_types: tuple[str, ...] = (XLSX_MIME, XLSM_MIME, XLSB_MIME, XLS_MIME, ODS_MIME)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        mime = self._kind(data, filename)
        builder = DocumentBuilder()
        hidden = sheets = 0
        try:
            with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
                for meta in workbook.sheets_metadata:
                    if meta.typ != SheetTypeEnum.WorkSheet:
                        continue  # chart and macro sheets hold no cell text
                    sheets += 1
                    if meta.visible != SheetVisibleEnum.Visible:
                        hidden += 1
                        continue
                    sheet = workbook.get_sheet_by_name(meta.name)
                    rows: list[list[Any]] = sheet.to_python(skip_empty_area=True)
                    start = sheet.start
                    _add_worksheet(builder, meta.name, rows, first_column=start[1] if start else 0)
        except python_calamine.PasswordError as e:
            raise EncryptedDocument(f"{filename} is password-protected; {_PROTECT_ADVICE}") from e
        except (python_calamine.CalamineError, ValueError, OverflowError) as e:
            raise ParseError(f"{filename} is not a valid {_label(mime)} workbook: {e}") from e
        if sheets == 0:
            raise EmptyDocument(
                f"{filename}: the workbook has no worksheets (only charts, or a damaged file)"
            )
        if not builder.has_text:
            skipped = f" ({hidden} hidden sheet{'s are' if hidden != 1 else ' is'} not read)"
            raise EmptyDocument(
                f"{filename}: the workbook's {sheets} sheet{'s' if sheets != 1 else ''} "
                f"contain no cell text{skipped if hidden else ''}"
            )
        logger.debug("parsed %s workbook with %d sheets (%d hidden)", _label(mime), sheets, hidden)
        title = _zip_title(data) if mime != XLS_MIME else None
        return builder.build(mime=mime, paginated=False, title=title)

    def _kind(self, data: bytes, filename: str) -> str:
        """The workbook's MIME type, after the zip-bomb and encryption checks."""
        if data.startswith(_OLE2_MAGIC):
            if _ENCRYPTION_INFO in data:
                raise EncryptedDocument(
                    f"{filename} is an encrypted (password-protected) workbook; {_PROTECT_ADVICE}"
                )
            return XLS_MIME
        self.zip_limits.check(data, filename=filename, kind="spreadsheet")
        try:
            mime = detect_type(data, filename).mime
        except IngestionError:
            mime = XLSX_MIME  # not a workbook at all: calamine will say what is wrong
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_extent(archive, set(archive.namelist()), filename)
            if mime == ODS_MIME and odf_encrypted(archive):
                raise EncryptedDocument(
                    f"{filename} is a password-protected OpenDocument spreadsheet; "
                    "save it without a password and upload again"
                )
        return mime if mime in self.mime_types else XLSX_MIME


def _zip_title(data: bytes) -> str | None:
    """The title in the workbook's properties (``docProps/core.xml``, ODS ``meta.xml``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        title = meta_title(archive)
        if title is not None:
            return title
        try:
            core = parse_xml(archive.read("docProps/core.xml"))
        except (KeyError, etree.XMLSyntaxError):
            return None
    found = core.find("dc:title", NS)
    return found.text if found is not None and found.text else None


def _check_extent(archive: zipfile.ZipFile, names: set[str], filename: str) -> None:
    """``FileTooLarge`` for a worksheet whose used area exceeds ``MAX_SHEET_CELLS``.

    XLSX: the span of the cell references in the sheet's XML. ODS: the span of the
    non-empty cells, with their row and column repeats (a 1 KB file can repeat one
    cell ten million times). XLSB: the sheet's dimension record, as Excel writes it
    (a forged one is not caught).
    """
    for name in sorted(names):
        if name == "content.xml":
            rows, cols = _ods_span(archive.read(name))
        elif not name.startswith("xl/worksheets/"):
            continue
        elif name.endswith(".xml"):
            rows, cols = _xlsx_span(archive.read(name))
        elif name.endswith(".bin"):
            rows, cols = _xlsb_span(archive.read(name))
        else:
            continue
        if rows * cols > MAX_SHEET_CELLS:
            raise FileTooLarge(
                f"{filename}: a sheet spans {rows:,} rows by {cols:,} columns "
                f"({rows * cols:,} cells; limit {MAX_SHEET_CELLS:,}); delete the unused rows "
                "and columns (one stray cell far away stretches the sheet) or split the workbook"
            )


def _xlsx_span(xml: bytes) -> tuple[int, int]:
    refs = _XLSX_CELL_REF.findall(xml)
    if not refs:
        return 0, 0
    # Cells may omit their reference and take the row's: count the rows' own numbers too.
    rows = [int(row) for _, row in refs] + [int(row) for row in _XLSX_ROW_REF.findall(xml)]
    cols = [_column_number(letters) for letters in {letters for letters, _ in refs}]
    width = max(cols) - min(cols) + 1
    # Cells without a reference follow the one before; bound them by their count.
    unreferenced = len(_XLSX_CELL.findall(xml)) - len(refs)
    return max(rows) - min(rows) + 1, width + max(unreferenced, 0)


_ODS_ROW = tag("table", "table-row")
_ODS_CELLS = frozenset({tag("table", "table-cell"), tag("table", "covered-table-cell")})
_ODS_TABLE = tag("table", "table")
_ODS_VALUE_TYPE = tag("office", "value-type")
_ODS_ROWS_REPEATED = tag("table", "number-rows-repeated")
_ODS_COLS_REPEATED = tag("table", "number-columns-repeated")


def _ods_span(content: bytes) -> tuple[int, int]:
    """The largest (rows, columns) span of non-empty cells over the sheets of an ODS."""
    best = (0, 0)
    row = 0
    first = last = -1
    width = 0
    for event, element in etree.iterparse(
        io.BytesIO(content), events=("start", "end"), tag=(_ODS_TABLE, _ODS_ROW),
        resolve_entities=False, no_network=True, huge_tree=True,
    ):  # fmt: skip
        if element.tag == _ODS_TABLE:
            if event == "start":
                row, first, last, width = 0, -1, -1, 0
            elif first >= 0 and (last - first + 1) * width > best[0] * best[1]:
                best = (last - first + 1, width)
            continue
        if event == "start":
            continue
        repeat = _repeat(element.get(_ODS_ROWS_REPEATED))
        column = used = 0
        for cell in element:
            if cell.tag not in _ODS_CELLS:
                continue
            column += _repeat(cell.get(_ODS_COLS_REPEATED))
            if cell.get(_ODS_VALUE_TYPE) is not None or len(cell):
                used = column
        if used:
            first = row if first < 0 else first
            last = row + repeat - 1
            width = max(width, used)
        row += repeat
        element.clear()
    return best


def _repeat(value: str | None) -> int:
    try:
        return max(int(value), 1) if value else 1
    except ValueError:
        return 1


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - ord("A") + 1
    return number


def _xlsb_span(part: bytes) -> tuple[int, int]:
    at = part.find(_XLSB_DIMENSION, 0, 4096)
    if at < 0 or len(part) < at + 19:
        return 0, 0
    first_row, last_row, first_col, last_col = struct.unpack_from("<4I", part, at + 3)
    return max(last_row - first_row + 1, 0), max(last_col - first_col + 1, 0)


def _add_worksheet(
    builder: DocumentBuilder, name: str, rows: list[list[Any]], *, first_column: int
) -> None:
    """A heading with the sheet name, then its rows; nothing at all for an empty sheet."""
    if not any(cell not in ("", None) for row in rows for cell in row):
        return
    path = (name,)
    builder.add("heading", name, path)
    add_sheet(builder, rows, path, first_column=first_column)


def _label(mime: str) -> str:
    return {XLS_MIME: "Excel 97-2003", XLSB_MIME: "XLSB", ODS_MIME: "ODS"}.get(mime, "Excel")
