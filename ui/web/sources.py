"""The sources panel: each citation with its document, page and the quote in its passage."""

from __future__ import annotations

import html
from typing import Any

from app.services.search import SearchService


def passage(text: str, quote: str, width: int = 280) -> str:
    """The quote highlighted in its passage (HTML)."""
    i = text.find(quote)
    if i < 0:
        return f"<mark>{html.escape(quote)}</mark>"
    start, end = max(0, i - width), min(len(text), i + len(quote) + width)
    return (
        ("…" if start else "")
        + html.escape(text[start:i])
        + f"<mark>{html.escape(quote)}</mark>"
        + html.escape(text[i + len(quote) : end])
        + ("…" if end < len(text) else "")
    )


def citations_html(search: SearchService, citations: list[dict[str, Any]]) -> str:
    """The sources panel for an answer's citations (empty when it has none)."""
    if not citations:
        return ""
    texts = search.chunk_texts([x["chunk_id"] for x in citations])
    parts = []
    for x in citations:
        page = x.get("page")
        link = f"/api/v1/documents/{x['document_id']}/file" + (f"#page={page}" if page else "")
        where = html.escape(x["title"]) + (f", page {page}" if page else "")
        if x.get("ocr"):
            where += " (text read by OCR)"
        parts.append(
            f"<div class='lantern-cite'><div class='where'>[{x['n']}] "
            f"<a href='{link}' target='_blank' rel='noopener'>{where}</a></div>"
            f"<div class='passage'>{passage(texts.get(x['chunk_id'], ''), x['quote'])}</div></div>"
        )
    return "<h4>Sources</h4>" + "".join(parts)
