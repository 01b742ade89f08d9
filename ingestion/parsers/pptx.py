"""PPTX parser on python-pptx: one ``Page`` per slide.

The title placeholder becomes a heading and the slide's section path; other
text frames become text or list blocks (body placeholders and explicit bullets
are lists), tables become ``a | b`` rows, speaker notes close the page as
``Notes: ...``. Shapes are read top to bottom, then left to right.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pptx
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.slide import Slide

from ingestion.detect import PPTX_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.ocr import OFF_HINT, Ocr, no_text_reason, read_pictures
from ingestion.parsers._blocks import DocumentBuilder, ListItem, format_list, format_table
from ingestion.parsers.base import ParsedDocument
from ingestion.safety import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED, ZipGuarded

logger = logging.getLogger(__name__)


_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_TITLES = (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE)
_BULLETED = (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY)


class PptxParser(ZipGuarded):
    """Parses PowerPoint ``.pptx`` files; refuses zip bombs before python-pptx opens them."""

    mime_types: tuple[str, ...] = (PPTX_MIME,)

    def __init__(
        self,
        *,
        max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
        max_ratio: float = DEFAULT_MAX_RATIO,
        ocr: Ocr | None = None,
        off_reason: str = OFF_HINT,
    ) -> None:
        super().__init__(max_uncompressed=max_uncompressed, max_ratio=max_ratio)
        self.ocr = ocr
        self.off_reason = off_reason

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        self.zip_limits.check(data, filename=filename, kind="PPTX")
        try:
            presentation = pptx.Presentation(io.BytesIO(data))
            slides = list(presentation.slides)
            # A slide with no text of its own: the text of its pictures, by OCR.
            pictures = [
                _pictures(slide) if self.ocr and not _has_text(slide) else [] for slide in slides
            ]
            core_title = presentation.core_properties.title
        except Exception as e:  # python-pptx/lxml raise many types on damaged files
            raise ParseError(f"{filename} is not a valid PPTX file: {e}") from e
        builder = DocumentBuilder()
        first_title: str | None = None
        total = sum(map(len, pictures))
        done = 0
        for number, slide in enumerate(slides, start=1):
            if number > 1:
                builder.next_page()
            try:
                title = _add_slide(builder, slide)
            except Exception as e:  # python-pptx/lxml raise many types on damaged files
                raise ParseError(f"{filename} is not a valid PPTX file: {e}") from e
            first_title = first_title or title
            if pictures[number - 1] and self.ocr is not None:
                builder.mark_ocr()
                done = read_pictures(
                    self.ocr, builder, pictures[number - 1], done=done, total=total,
                    pages=len(slides),
                )  # fmt: skip
        if not builder.has_text:
            count = f"{len(slides)} slide{'s' if len(slides) != 1 else ''}"
            reason = no_text_reason(
                pictures=total, ocr=self.ocr, off_reason=self.off_reason, what="pictures"
            )
            raise EmptyDocument(f"{filename}: PPTX has {count} but no text ({reason})")
        logger.debug("parsed PPTX with %d slides", len(slides))
        return builder.build(mime=PPTX_MIME, paginated=True, title=core_title or first_title)


def _add_slide(builder: DocumentBuilder, slide: Slide) -> str | None:
    """Add one slide's blocks to the current page; return its title, if any."""
    title_shape: Any = next((s for s in slide.shapes if _placeholder_type(s) in _TITLES), None)
    title = title_shape.text_frame.text.strip() if title_shape is not None else ""
    path = (title,) if title else ()
    if title:
        builder.add("heading", title, path)
    title_id = title_shape.shape_id if title_shape is not None else None
    shapes = [s for s in _flatten(slide.shapes) if s.shape_id != title_id]
    shapes.sort(key=lambda s: (s.top or 0, s.left or 0))
    for shape in shapes:
        if shape.has_table:
            rows = [[c.text for c in row.cells if not c.is_spanned] for row in shape.table.rows]
            builder.add("table", format_table(rows), path)
        elif shape.has_text_frame:
            _add_text_frame(builder, shape, path)
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = frame.text.strip() if frame is not None else ""
        if notes:
            builder.add("text", f"Notes: {notes}", path)
    return title or None


def _has_text(slide: Slide) -> bool:
    for shape in _flatten(slide.shapes):
        if shape.has_text_frame and shape.text_frame.text.strip():
            return True
        table = shape.table if getattr(shape, "has_table", False) else None
        if table is not None and any(c.text.strip() for r in table.rows for c in r.cells):
            return True
    return False


def _pictures(slide: Slide) -> list[bytes]:
    """The slide's pictures (top to bottom, then left to right), as image bytes."""
    found = []
    for shape in _flatten(slide.shapes):
        if shape.shape_type == MSO_SHAPE_TYPE.PICTURE or (
            shape.is_placeholder and hasattr(shape, "image")
        ):
            try:
                found.append((shape.top or 0, shape.left or 0, shape.image.blob))
            except (AttributeError, KeyError, ValueError):
                continue  # a linked picture, or a placeholder without one
    found.sort(key=lambda f: (f[0], f[1]))
    return [blob for _, _, blob in found]


def _flatten(shapes: Any) -> Iterator[Any]:
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _flatten(shape.shapes)
        else:
            yield shape


def _placeholder_type(shape: Any) -> Any:
    return shape.placeholder_format.type if shape.is_placeholder else None


def _add_text_frame(builder: DocumentBuilder, shape: Any, path: tuple[str, ...]) -> None:
    """Runs of bulleted paragraphs become one list block, other runs one text block."""
    bulleted_by_default = _placeholder_type(shape) in _BULLETED
    items: list[ListItem] = []
    lines: list[str] = []
    for paragraph in shape.text_frame.paragraphs:
        text = paragraph.text
        if not text.strip():
            continue
        bullet = _bullet(paragraph, bulleted_by_default)
        if bullet is None:
            if items:
                builder.add("list", format_list(items), path)
                items = []
            lines.append(text)
        else:
            if lines:
                builder.add("text", "\n".join(lines), path)
                lines = []
            items.append(ListItem(text, paragraph.level, ordered=bullet == "ordered"))
    if items:
        builder.add("list", format_list(items), path)
    if lines:
        builder.add("text", "\n".join(lines), path)


def _bullet(paragraph: Any, default: bool) -> str | None:
    """ "ordered", "bullet", or None for a plain paragraph."""
    p_pr = paragraph._p.pPr
    if p_pr is not None:
        if p_pr.find(f"{_A}buNone") is not None:
            return None
        if p_pr.find(f"{_A}buAutoNum") is not None:
            return "ordered"
        if p_pr.find(f"{_A}buChar") is not None:
            return "bullet"
    return "bullet" if default else None
