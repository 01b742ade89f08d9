"""Optional parser backend on ``unstructured`` (not registered by default).

unstructured downloads models on first use and, offline, can silently return no
elements; this backend turns that into ``EmptyDocument`` instead of an empty
document. Install with ``pip install 'lantern[unstructured]'`` and register it
for the MIME types you want it to handle.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable
from typing import Any

from ingestion.errors import EmptyDocument, ParseError, UnsupportedFormat
from ingestion.parsers._blocks import DocumentBuilder, HeadingTrail
from ingestion.parsers.base import ElementKind, ParsedDocument

logger = logging.getLogger(__name__)

INSTALL_HINT = "the unstructured parser needs an extra: pip install 'lantern[unstructured]'"

_KINDS: dict[str, ElementKind] = {
    "Title": "heading",
    "ListItem": "list",
    "Table": "table",
    "CodeSnippet": "code",
}
_SKIPPED = frozenset({"Header", "Footer", "PageBreak", "Image", "PageNumber"})


class UnstructuredParser:
    """Parses with ``unstructured.partition.auto.partition``; slow, needs its models."""

    def __init__(
        self, mime_types: Iterable[str], *, strategy: str = "fast", paginated: bool = True
    ) -> None:
        self.mime_types: tuple[str, ...] = tuple(mime_types)
        self.strategy = strategy
        self.paginated = paginated

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        partition = _load_partition()
        try:
            elements = partition(
                file=io.BytesIO(data), metadata_filename=filename, strategy=self.strategy
            )
        except Exception as e:  # unstructured wraps many libraries; report, don't crash
            raise ParseError(f"unstructured could not parse {filename}: {e}") from e
        document = self._build(elements, filename)
        logger.debug("unstructured returned %d elements", len(document.elements))
        return document

    def _build(self, elements: list[Any], filename: str) -> ParsedDocument:
        builder = DocumentBuilder()
        trail = HeadingTrail()
        mime = self.mime_types[0] if self.mime_types else "application/octet-stream"
        for element in elements:
            category = str(getattr(element, "category", ""))
            text = str(getattr(element, "text", "") or "")
            if category in _SKIPPED or not text.strip():
                continue
            page = getattr(getattr(element, "metadata", None), "page_number", None) or 1
            while self.paginated and builder.page_number < int(page):
                builder.next_page()
            kind = _KINDS.get(category, "text")
            if kind == "heading":
                depth = getattr(element.metadata, "category_depth", None) or 0
                builder.add("heading", text, trail.enter(int(depth), text))
            else:
                builder.add(kind, text, trail.path)
        if not builder.has_text:
            raise EmptyDocument(
                f"unstructured found no text in {filename}; offline it silently returns "
                "nothing when its models are missing — use the default parsers instead"
            )
        return builder.build(mime=mime, paginated=self.paginated)


def _load_partition() -> Any:
    os.environ.setdefault("DO_NOT_TRACK", "1")  # unstructured phones home otherwise
    try:
        from unstructured.partition.auto import partition
    except ImportError as e:
        raise UnsupportedFormat(INSTALL_HINT) from e
    return partition
