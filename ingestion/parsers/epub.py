"""EPUB parser: the book's chapters in reading order, each read like an HTML page.

An EPUB is a zip of XHTML: ``META-INF/container.xml`` names the package (OPF)
file, whose spine lists the chapters in order. It is read here with zipfile and
lxml, not ebooklib (AGPL, which an Apache-2.0 project cannot ship); the
chapters go through the HTML parser's own block logic (``add_html_body``), one
heading trail across the book, so a chapter's headings are its sections (a
chapter without headings has no section, rather than its predecessor's).

One page for the book (``paginated=False``): an EPUB reflows, so a "page 3" in
a citation would match nothing a reader sees; chapter headings locate it.
DRM-encrypted books are refused; font obfuscation (which ``encryption.xml``
also records) is not DRM and is ignored.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import zipfile
from typing import Any
from urllib.parse import unquote

from lxml import etree
from selectolax.lexbor import LexborHTMLParser

from ingestion.detect import EPUB_MIME
from ingestion.errors import EmptyDocument, EncryptedDocument, ParseError
from ingestion.parsers._blocks import DocumentBuilder, HeadingTrail
from ingestion.parsers._decode import decode_text
from ingestion.parsers._odf import parse_xml
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.html import add_html_body
from ingestion.safety import ZipGuarded

logger = logging.getLogger(__name__)

_CONTAINER = {"c": "urn:oasis:names:tc:opendocument:xmlns:container"}
_OPF = {"opf": "http://www.idpf.org/2007/opf", "dc": "http://purl.org/dc/elements/1.1/"}
_ENC = {"enc": "http://www.w3.org/2001/04/xmlenc#"}
# encryption.xml also lists obfuscated fonts; these algorithms are not DRM.
_FONT_OBFUSCATION = frozenset(
    {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
)
_CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/xml"})
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")


class EpubParser(ZipGuarded):
    """Parses ``.epub`` books; refuses zip bombs and DRM before reading chapters."""

    mime_types: tuple[str, ...] = (EPUB_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        self.zip_limits.check(data, filename=filename, kind="EPUB")
        builder = DocumentBuilder()
        trail = HeadingTrail()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                opf_path = _package_path(archive)
                opf = parse_xml(archive.read(opf_path))
                chapters = _spine(opf, posixpath.dirname(opf_path))
                drm = _drm_protected(archive) & set(chapters)
                if drm:
                    raise EncryptedDocument(
                        f"{filename} is DRM-protected ({len(drm)} of its {len(chapters)} "
                        "chapters are encrypted); upload a DRM-free copy of the book"
                    )
                for path in chapters:
                    try:
                        chapter = archive.read(path)
                    except KeyError:
                        logger.warning("EPUB spine names a missing chapter; skipped")
                        continue
                    tree = _html(chapter)
                    if tree.css_first("h1, h2, h3, h4, h5, h6") is None:
                        # No heading of its own: not a section of the chapter before it.
                        add_html_body(builder, tree, HeadingTrail(), site_chrome=False)
                    else:
                        add_html_body(builder, tree, trail, site_chrome=False)
        except (EncryptedDocument, ParseError):
            raise
        except KeyError as e:
            raise ParseError(f"{filename} is not a valid EPUB file: {e.args[0]} is missing") from e
        except (etree.XMLSyntaxError, zipfile.BadZipFile, EOFError, OSError) as e:
            raise ParseError(f"{filename} is not a valid EPUB file: {e}") from e
        if not builder.has_text:
            raise EmptyDocument(
                f"{filename}: the book's {len(chapters)} chapters contain no text (only images?)"
            )
        logger.debug("parsed EPUB with %d chapters", len(chapters))
        return builder.build(mime=EPUB_MIME, paginated=False, title=_title(opf))


def _package_path(archive: zipfile.ZipFile) -> str:
    container = parse_xml(archive.read("META-INF/container.xml"))
    rootfile = container.find(".//c:rootfile", _CONTAINER)
    path = rootfile.get("full-path") if rootfile is not None else None
    if not isinstance(path, str) or not path:
        raise ParseError("META-INF/container.xml names no package (OPF) file")
    return path


def _spine(opf: Any, base: str) -> list[str]:
    """Zip paths of the spine's (X)HTML documents, in reading order."""
    manifest = {
        item.get("id"): item
        for item in opf.iterfind("opf:manifest/opf:item", _OPF)
        if item.get("id") and item.get("href")
    }
    paths = []
    for ref in opf.iterfind("opf:spine/opf:itemref", _OPF):
        item = manifest.get(ref.get("idref"))
        if item is not None and item.get("media-type", "") in _CHAPTER_TYPES:
            paths.append(_resolve(base, item.get("href")))
    return paths


def _resolve(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0])))


def _title(opf: Any) -> str | None:
    found = opf.find("opf:metadata/dc:title", _OPF)
    return found.text if found is not None and found.text else None


def _drm_protected(archive: zipfile.ZipFile) -> set[str]:
    """Zip paths that ``encryption.xml`` says are encrypted with something other than
    font obfuscation."""
    try:
        root = parse_xml(archive.read("META-INF/encryption.xml"))
    except KeyError:
        return set()
    encrypted = set()
    for entry in root.iterfind(".//enc:EncryptedData", _ENC):
        method = entry.find("enc:EncryptionMethod", _ENC)
        reference = entry.find("enc:CipherData/enc:CipherReference", _ENC)
        if reference is None or (
            method is not None and method.get("Algorithm") in _FONT_OBFUSCATION
        ):
            continue
        encrypted.add(_resolve("", reference.get("URI", "")))
    return encrypted


def _html(data: bytes) -> LexborHTMLParser:
    match = _XML_ENCODING.match(data[:200])
    return LexborHTMLParser(decode_text(data, declared=match.group(1).decode() if match else None))
