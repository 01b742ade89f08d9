"""Ruled tables in PDF pages, found with pdfplumber's table finder (MIT).

pdfplumber finds a table from the lines and rectangles drawn around its cells
("lines" strategy). Its "text" strategy, which guesses columns from aligned
words, is not used: it turns ordinary prose into tables. pdfplumber is pure
Python and far slower than pdfium, so it only reads pages where pdfium sees
something drawn that could rule a table (``may_have_rules``), and it opens the
document lazily, once, from the same bytes.
"""

from __future__ import annotations

import ctypes
import io
import logging
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingestion.parsers._blocks import format_table
from ingestion.parsers._pdf_order import Table

logger = logging.getLogger(__name__)

# Points: a table's rules (or cell rectangles) reach this far across and this far
# down (a row's height); dashes, underlines and thick title rules do not do both.
_MIN_ACROSS = 20.0
_MIN_DOWN = 8.0
_THIN = 2.0  # a path narrower than this is a line, not a rectangle
_GRID_SEGMENTS = 6  # a path of this many segments may draw a whole grid


def may_have_rules(page: pdfium.PdfPage) -> bool:
    """Whether the page draws something that could rule a table of two rows and two
    columns: rules (or cell edges) at three x positions and three y positions, a
    path large and complex enough to be a grid, or a form XObject (not looked
    into). A box around a code sample or a rule under a header is not enough.
    Call under ``PDFIUM_LOCK``."""
    xs: set[int] = set()
    ys: set[int] = set()
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    for index in range(pdfium_c.FPDFPage_CountObjects(page)):
        obj = pdfium_c.FPDFPage_GetObject(page, index)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            return True
        if kind != pdfium_c.FPDF_PAGEOBJ_PATH:
            continue
        if not pdfium_c.FPDFPageObj_GetBounds(
            obj, ctypes.byref(left), ctypes.byref(bottom), ctypes.byref(right), ctypes.byref(top)
        ):
            continue
        width, height = right.value - left.value, top.value - bottom.value
        big = width >= _MIN_ACROSS and height >= _MIN_DOWN
        if big and pdfium_c.FPDFPath_CountSegments(obj) >= _GRID_SEGMENTS:
            return True
        if height >= _MIN_DOWN:
            xs.add(round(left.value))
            if width >= _THIN:
                xs.add(round(right.value))
        if width >= _MIN_ACROSS:
            ys.add(round(bottom.value))
            if height >= _THIN:
                ys.add(round(top.value))
        if len(xs) >= 3 and len(ys) >= 3:
            return True
    return False


class TableFinder:
    """Tables of one document's pages; a page whose tables cannot be read has none
    (its words stay plain lines), and a document pdfplumber cannot open has none."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pdf: Any = None
        self._failed = False

    def find(self, index: int, width: float, height: float) -> list[Table]:
        """Tables on page ``index`` (0-based) of pdfium's size ``width`` x ``height``,
        in pdfium's page space. Tables need two rows and two columns with text."""
        pdf = self._open()
        if pdf is None:
            return []
        page = None
        try:
            page = pdf.pages[index]
            raw = [float(v) for v in page.page_obj.mediabox]
            if (
                page.rotation % 360
                or raw[0] != 0
                or raw[1] != 0
                or abs(page.width - width) > 1
                or abs(page.height - height) > 1
            ):
                # Rotated or offset pages put the two libraries' coordinates apart.
                logger.info("page %d: rotated or offset page, tables kept as lines", index + 1)
                return []
            tables = []
            for found in page.find_tables():
                rows = [[cell or "" for cell in row] for row in found.extract()]
                text = format_table(rows)
                if text.count("\n") >= 1 and max(len(row) for row in rows) >= 2:
                    x0, top, x1, bottom = (float(v) for v in found.bbox)
                    tables.append(Table(x0, height - bottom, x1, height - top, text))
            return tables
        except Exception as e:  # pdfminer raises many types on damaged content
            logger.info("page %d: unreadable table area, kept as lines (%s)", index + 1, e)
            return []
        finally:
            if page is not None:
                page.close()  # drops pdfplumber's cached characters

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None

    def _open(self) -> Any:
        if self._pdf is None and not self._failed:
            import pdfplumber

            try:
                self._pdf = pdfplumber.open(io.BytesIO(self._data))
            except Exception as e:  # pdfminer is stricter than pdfium on damaged files
                self._failed = True
                logger.info("pdfplumber cannot read this PDF, tables kept as lines (%s)", e)
        return self._pdf
