"""The parser protocol and the structures every parser returns.

A parser turns raw bytes into *pages* of plain text plus *elements* that point
into those pages by character offsets. Chunks are later cut from the page text,
so every chunk (and every citation built on one) maps back to an exact span
``page.text[start:end]`` on a known page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ElementKind = Literal["text", "heading", "list", "table", "code"]


@dataclass(frozen=True)
class Page:
    """One page of extracted text. ``number`` is 1-based (PDF page, PPTX slide).

    ``ocr`` is True when the text was read by OCR from an image of the page (a scan,
    a photograph, a slide of screenshots): citations say so."""

    number: int
    text: str
    ocr: bool = False


@dataclass(frozen=True)
class Element:
    """A block of text on one page: ``pages[page-1].text[start:end]`` is its text.

    ``section_path`` is the heading trail in effect at this block, outermost
    first (``("Benefits", "Parental leave")``). A heading element's own
    section_path includes itself.
    """

    kind: ElementKind
    page: int
    start: int
    end: int
    section_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """A file carried inside a document (an e-mail's attachment), ingested as a
    document of its own: ``name`` is its file name, ``data`` its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ParsedDocument:
    """What a parser returns.

    ``paginated`` is False for formats without real pages (DOCX, HTML,
    Markdown, TXT): they come back as a single page 1 and citations omit the
    page number. ``attachments``: files inside it (an e-mail's) that the job
    adds as documents of their own, linked to this one.
    """

    mime: str
    pages: tuple[Page, ...]
    elements: tuple[Element, ...]
    paginated: bool
    title: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()

    def element_text(self, element: Element) -> str:
        return self.pages[element.page - 1].text[element.start : element.end]

    @property
    def ocr_pages(self) -> int:
        return sum(1 for p in self.pages if p.ocr)

    @property
    def text_length(self) -> int:
        return sum(len(p.text.strip()) for p in self.pages)


class Parser(Protocol):
    """Parses one format. Raises ``ParseError``/``EncryptedDocument``/``EmptyDocument``
    (from ``ingestion.errors``) with a reason an admin can act on; never returns
    an empty document for non-empty input."""

    #: MIME types this parser handles, e.g. ``("application/pdf",)``.
    mime_types: tuple[str, ...]

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument: ...
