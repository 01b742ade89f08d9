"""OpenDocument helpers shared by the ODT/ODP and ODS parsers: namespaces, the
manifest's encryption flag, and the text of an inline run.

OpenDocument files are zips of XML read here with zipfile and lxml: odfpy, the
usual library, has been unmaintained since 2020, and the parts Lantern needs
(``content.xml``, ``meta.xml``, the manifest) are plain XML.
"""

from __future__ import annotations

import zipfile
from typing import Any

from lxml import etree

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def tag(prefix: str, name: str) -> str:
    """Clark notation: ``tag("text", "p")`` is ``{urn:...:text:1.0}p``."""
    return f"{{{NS[prefix]}}}{name}"


_S, _TAB, _BREAK = tag("text", "s"), tag("text", "tab"), tag("text", "line-break")
# Footnote bodies, comments and change-tracking records are not part of the running text.
_SKIP = frozenset(
    {
        tag("text", "note"), tag("office", "annotation"), tag("office", "annotation-end"),
        tag("text", "tracked-changes"), tag("text", "bookmark-ref"),
    }
)  # fmt: skip
_BLOCKS = frozenset({tag("text", "p"), tag("text", "h")})

#: A parser that never fetches external entities or DTDs (untrusted input).
XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def parse_xml(data: bytes) -> Any:
    """The root element of an XML part; ``etree.XMLSyntaxError`` if it is not XML."""
    return etree.fromstring(data, XML_PARSER)


def odf_encrypted(archive: zipfile.ZipFile) -> bool:
    """Whether the manifest says a part is encrypted (a password-protected document)."""
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        return False
    return b"encryption-data" in manifest


def inline_text(element: Any) -> str:
    """The text of a paragraph or heading: ``text:s`` (runs of spaces), tabs and line
    breaks become whitespace so words never glue together; spans and links are read
    through; frames inside a paragraph (text boxes) contribute their paragraphs."""
    parts: list[str] = [element.text or ""]
    for child in element:
        if child.tag in _SKIP:
            pass
        elif child.tag == _S:
            parts.append(" " * _count(child.get(tag("text", "c"))))
        elif child.tag == _TAB:
            parts.append("\t")
        elif child.tag == _BREAK:
            parts.append("\n")
        elif child.tag in _BLOCKS:
            parts.append(" " + inline_text(child) + " ")
        elif isinstance(child.tag, str):
            parts.append(inline_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _count(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), 100)
    except ValueError:
        return 1


def meta_title(archive: zipfile.ZipFile) -> str | None:
    """``dc:title`` from ``meta.xml``, if the file has one."""
    try:
        root = parse_xml(archive.read("meta.xml"))
    except (KeyError, etree.XMLSyntaxError):
        return None
    found = root.find(".//dc:title", NS)
    return found.text if found is not None and found.text else None
