"""Decide what an upload really is, from its content first and its name second.

A PDF named ``.docx`` is a PDF; a PNG named ``.md`` is refused as an image;
a legacy OLE2 ``.doc`` gets a message saying what to do. Zip-based formats are
told apart by their parts: OOXML by ``word/``, ``ppt/`` or ``xl/`` workbook parts,
OpenDocument and EPUB by their ``mimetype`` entry. OLE2 files are told apart by
their streams (an Outlook ``.msg``, an ``.xls`` workbook, a password-protected
OOXML file); an e-mail (``.eml``) is text that starts with an RFC 5322 header
block. CSV/TSV are text with a ``.csv``/``.tsv`` name: nothing in the bytes says
"table".
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

import olefile

from ingestion.errors import EmptyDocument, EncryptedDocument, ParseError, UnsupportedFormat
from ingestion.parsers._decode import bom_encoding

PDF_MIME = "application/pdf"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM_MIME = "application/vnd.ms-excel.sheet.macroEnabled.12"
XLSB_MIME = "application/vnd.ms-excel.sheet.binary.macroEnabled.12"
ODS_MIME = "application/vnd.oasis.opendocument.spreadsheet"
ODT_MIME = "application/vnd.oasis.opendocument.text"
ODP_MIME = "application/vnd.oasis.opendocument.presentation"
EPUB_MIME = "application/epub+zip"
RTF_MIME = "application/rtf"
HTML_MIME = "text/html"
MARKDOWN_MIME = "text/markdown"
CSV_MIME = "text/csv"
TSV_MIME = "text/tab-separated-values"
TEXT_MIME = "text/plain"
EML_MIME = "message/rfc822"
MSG_MIME = "application/vnd.ms-outlook"
XLS_MIME = "application/vnd.ms-excel"
PNG_MIME = "image/png"
JPEG_MIME = "image/jpeg"
TIFF_MIME = "image/tiff"
BMP_MIME = "image/bmp"
GIF_MIME = "image/gif"
WEBP_MIME = "image/webp"
#: Image formats read by OCR (``ingestion.parsers.image``).
IMAGE_MIMES = (PNG_MIME, JPEG_MIME, TIFF_MIME, BMP_MIME, GIF_MIME, WEBP_MIME)

EXTENSIONS: dict[str, str] = {
    PDF_MIME: ".pdf",
    DOCX_MIME: ".docx",
    PPTX_MIME: ".pptx",
    XLSX_MIME: ".xlsx",
    XLSM_MIME: ".xlsm",
    XLSB_MIME: ".xlsb",
    ODS_MIME: ".ods",
    ODT_MIME: ".odt",
    ODP_MIME: ".odp",
    EPUB_MIME: ".epub",
    RTF_MIME: ".rtf",
    HTML_MIME: ".html",
    MARKDOWN_MIME: ".md",
    CSV_MIME: ".csv",
    TSV_MIME: ".tsv",
    TEXT_MIME: ".txt",
    EML_MIME: ".eml",
    MSG_MIME: ".msg",
    XLS_MIME: ".xls",
    PNG_MIME: ".png",
    JPEG_MIME: ".jpg",
    TIFF_MIME: ".tiff",
    BMP_MIME: ".bmp",
    GIF_MIME: ".gif",
    WEBP_MIME: ".webp",
}

# The ``mimetype`` entry of OpenDocument and EPUB zips; templates parse like documents.
_ZIP_MIMETYPES: dict[str, str] = {
    ODT_MIME: ODT_MIME,
    ODT_MIME + "-template": ODT_MIME,
    ODP_MIME: ODP_MIME,
    ODP_MIME + "-template": ODP_MIME,
    ODS_MIME: ODS_MIME,
    ODS_MIME + "-template": ODS_MIME,
    EPUB_MIME: EPUB_MIME,
}
# A damaged zip of these types goes to its parser, which names the type in its error.
_ZIP_EXTENSIONS: dict[str, str] = {
    ".docx": DOCX_MIME,
    ".pptx": PPTX_MIME,
    ".xlsx": XLSX_MIME,
    ".xlsm": XLSM_MIME,
    ".xlsb": XLSB_MIME,
    ".ods": ODS_MIME,
    ".odt": ODT_MIME,
    ".odp": ODP_MIME,
    ".epub": EPUB_MIME,
}

MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdown"})
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
_DELIMITED_EXTENSIONS: dict[str, str] = {".csv": CSV_MIME, ".tsv": TSV_MIME, ".tab": TSV_MIME}
_TEXT_EXTENSIONS = (
    MARKDOWN_EXTENSIONS | HTML_EXTENSIONS | _DELIMITED_EXTENSIONS.keys() | {".txt", ".text", ".log"}
)

_SNIFF_BYTES = 8192
_MAX_CONTROL_RATIO = 0.05
# Control bytes that plain text legitimately contains: \t \n \v \f \r and ESC (ANSI colours).
_TEXT_CONTROLS = frozenset(b"\t\n\x0b\x0c\r\x1b")

_IMAGE_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG_MIME),
    (b"\xff\xd8\xff", JPEG_MIME),
    (b"GIF87a", GIF_MIME),
    (b"GIF89a", GIF_MIME),
    (b"II*\x00", TIFF_MIME),
    (b"MM\x00*", TIFF_MIME),
    (b"BM", BMP_MIME),
)

_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"BZh", "a bzip2 archive"),
    (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"(\xb5/\xfd", "a zstd archive"),
    (0, b"7z\xbc\xaf'\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"\x7fELF", "an executable (ELF)"),
    (0, b"MZ", "a Windows executable"),
    (0, b"\xca\xfe\xba\xbe", "a Java class or Mach-O binary"),
    (0, b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (0, b"\x00asm", "a WebAssembly module"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"OggS", "an Ogg audio/video file"),
    (0, b"ID3", "an MP3 audio file"),
    (0, b"fLaC", "a FLAC audio file"),
    (0, b"RIFF", "a RIFF media file (WAV/AVI/WebP)"),
    (4, b"ftyp", "an MP4/QuickTime media file"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
)

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HTML_START = re.compile(
    rb"^(?:\s|<\?xml[^>]*>|<!--.*?-->)*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL
)
_ANY_TAG = re.compile(rb"<(?:[a-zA-Z][a-zA-Z0-9]*[\s/>]|!--|!doctype)", re.IGNORECASE)


@dataclass(frozen=True)
class DetectedType:
    """The MIME type Lantern will parse an upload as, and that type's usual extension
    (``".pdf"``; not necessarily the uploaded file's own extension)."""

    mime: str
    extension: str


def detect_type(data: bytes, filename: str) -> DetectedType:
    """Detect the format of ``data``; raise ``UnsupportedFormat``/``EmptyDocument``
    (or ``ParseError`` for a damaged zip of unknown kind) with a reason an admin can act on."""
    if not data:
        raise EmptyDocument("file is empty")
    suffix = PurePath(filename).suffix.lower()
    if _is_pdf(data):
        return _found(PDF_MIME)
    image = image_mime(data)
    if image is not None:
        return _found(image)
    if data.startswith(_ZIP_MAGICS):
        return _found(_zip_kind(data, filename, suffix))
    if data.startswith(_OLE2_MAGIC):
        return _found(_ole_kind(data, filename))
    if data.lstrip()[:5] == b"{\\rtf":
        return _found(RTF_MIME)
    if not _looks_like_text(data[:_SNIFF_BYTES]):
        # Name the format when a magic number says what it is; ASCII-ish magics
        # ("MZ", "ID3") only count on binary content.
        for offset, magic, what in _MAGICS:
            if data[offset : offset + len(magic)] == magic:
                raise UnsupportedFormat(f"{filename} looks like {what}, which Lantern cannot read")
        hint = (
            f" (its {suffix} extension does not match its content)"
            if suffix in _TEXT_EXTENSIONS
            else ""
        )
        raise UnsupportedFormat(f"{filename} looks like binary data, not text{hint}")
    return _found(_text_kind(data, suffix))


def image_mime(data: bytes) -> str | None:
    """The MIME type of an image format OCR reads, from its magic number; else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP_MIME
    for magic, mime in _IMAGE_MAGICS:
        # "BM" is two ASCII letters: a bitmap only with its header's binary size fields.
        if data.startswith(magic) and (mime != BMP_MIME or _is_bmp(data)):
            return mime
    return None


def _is_bmp(data: bytes) -> bool:
    # BITMAPFILEHEADER: "BM", file size, two reserved zero words, pixel offset; then a
    # DIB header whose size is 12, 40, 52, 56, 64, 108 or 124.
    return (
        len(data) >= 26
        and data[6:10] == b"\x00\x00\x00\x00"
        and int.from_bytes(data[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    )


def _found(mime: str) -> DetectedType:
    return DetectedType(mime, EXTENSIONS[mime])


def _is_pdf(data: bytes) -> bool:
    # Readers accept the header anywhere in the first KiB, after binary junk
    # (e.g. a MacBinary wrapper); a text file that merely mentions "%PDF-" is not a PDF.
    at = data.find(b"%PDF-", 0, 1024)
    if at < 0:
        return False
    prefix = data[:at]
    return not prefix.strip() or not _looks_like_text(prefix)


def _zip_kind(data: bytes, filename: str, suffix: str) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        # A damaged DOCX/XLSX/EPUB...: its parser reports it as a corrupt file of that type.
        if suffix in _ZIP_EXTENSIONS:
            return _ZIP_EXTENSIONS[suffix]
        raise ParseError(f"{filename} looks like a zip archive but it is damaged: {e}") from e
    with archive:
        return _zip_member_kind(archive, set(names), filename, suffix)


def _zip_member_kind(archive: zipfile.ZipFile, names: set[str], filename: str, suffix: str) -> str:
    if "word/document.xml" in names:
        return DOCX_MIME
    if "ppt/presentation.xml" in names:
        return PPTX_MIME
    if "xl/workbook.bin" in names:
        return XLSB_MIME
    if "xl/workbook.xml" in names:
        return XLSM_MIME if suffix == ".xlsm" or _macro_enabled(archive) else XLSX_MIME
    if "mimetype" in names:
        declared = _read_small(archive, "mimetype").decode("ascii", "replace").strip()
        if declared in _ZIP_MIMETYPES:
            return _ZIP_MIMETYPES[declared]
        if declared.startswith("application/vnd.oasis.opendocument."):
            kind = declared.rsplit(".", 1)[-1]
            raise UnsupportedFormat(
                f"{filename} is an OpenDocument {kind} file; Lantern reads OpenDocument "
                "text, presentations and spreadsheets (.odt, .odp, .ods)"
            )
    raise UnsupportedFormat(
        f"{filename} is a zip archive, not a document; upload the files inside it instead"
    )


def _read_small(archive: zipfile.ZipFile, name: str, limit: int = 64 * 1024) -> bytes:
    """At most ``limit`` bytes of one member (never inflating a bomb); empty if unreadable."""
    try:
        with archive.open(name) as member:
            return member.read(limit)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, RuntimeError):
        return b""


def _macro_enabled(archive: zipfile.ZipFile) -> bool:
    return b"sheet.macroEnabled.main+xml" in _read_small(archive, "[Content_Types].xml")


def _ole_kind(data: bytes, filename: str) -> str:
    """An OLE2 compound file, by its top-level streams: Outlook message, Excel
    workbook, encrypted OOXML (refused), else a legacy .doc/.ppt (refused)."""
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            top = {path[0].lower() for path in ole.listdir(streams=True, storages=True)}
    except Exception as e:  # olefile reports damage with assorted exception types
        raise ParseError(
            f"{filename} looks like an Office (OLE2) file but it is damaged: {e}"
        ) from e
    if "__properties_version1.0" in top and _any_prefix(top, "__substg1.0_"):
        return MSG_MIME
    if {"encryptioninfo", "encryptedpackage"} <= top:
        raise EncryptedDocument(
            f"{filename} is a password-protected Office file; remove the password and upload again"
        )
    if "workbook" in top or "book" in top:
        return XLS_MIME
    raise UnsupportedFormat(
        f"{filename}: legacy .doc/.ppt (OLE2) files are not supported; save as .docx/.pptx"
    )


def _any_prefix(names: Iterable[str], prefix: str) -> bool:
    return any(name.startswith(prefix) for name in names)


def _looks_like_text(sample: bytes) -> bool:
    if bom_encoding(sample) is not None:
        return True  # UTF-16/32 text is full of NUL bytes
    if b"\x00" in sample:
        return False
    controls = sum(
        1 for byte in sample if (byte < 0x20 or byte == 0x7F) and byte not in _TEXT_CONTROLS
    )
    return controls <= _MAX_CONTROL_RATIO * len(sample)


def _text_kind(data: bytes, suffix: str) -> str:
    head = data[:_SNIFF_BYTES]
    bom = bom_encoding(head)
    if bom is not None:
        # Sniff the markup on an ASCII-compatible view of UTF-16/32 text.
        encoding, skip = bom
        head = head[skip:].decode(encoding, errors="ignore").encode("utf-8")
    if _is_mail(head, suffix):
        return EML_MIME
    if _HTML_START.match(head):
        return HTML_MIME
    if suffix in HTML_EXTENSIONS and _ANY_TAG.search(head):
        return HTML_MIME
    if suffix in MARKDOWN_EXTENSIONS:
        return MARKDOWN_MIME
    if suffix in _DELIMITED_EXTENSIONS:
        return _DELIMITED_EXTENSIONS[suffix]
    return TEXT_MIME


_HEADER_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")  # RFC 5322 field name, then a colon
_HEADER_END = re.compile(rb"\r?\n[ \t]*\r?\n")
_MAIL_FIELDS = frozenset(
    {
        b"from", b"to", b"cc", b"bcc", b"subject", b"date", b"message-id", b"mime-version",
        b"received", b"return-path", b"reply-to", b"sender", b"delivered-to", b"in-reply-to",
        b"references", b"content-type", b"content-transfer-encoding", b"x-mailer",
        b"user-agent", b"thread-topic", b"dkim-signature", b"authentication-results",
    }
)  # fmt: skip
_ORIGIN_FIELDS = frozenset({b"from", b"sender", b"received", b"return-path"})
_TRANSPORT_FIELDS = frozenset({b"date", b"message-id", b"mime-version", b"received"})


def _is_mail(head: bytes, suffix: str) -> bool:
    """Whether ``head`` starts with an e-mail's header block: only header lines (and
    their continuations) before the first blank line. Without the ``.eml`` extension
    it must also name a sender and carry a transport field (Date, Message-ID,
    MIME-Version, Received), so a note that starts with "From: Ann" stays text."""
    end = _HEADER_END.search(head)
    lines = (head[: end.start()] if end else head).splitlines()
    if not end and len(head) >= _SNIFF_BYTES:
        lines = lines[:-1]  # cut off by the sniff window
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]  # an mbox separator line
    names: set[bytes] = set()
    for line in lines:
        if line[:1] in (b" ", b"\t") and names:
            continue  # a folded header's continuation
        match = _HEADER_FIELD.match(line)
        if match is None:
            return False
        names.add(match.group(1).lower())
    known = names & _MAIL_FIELDS
    if suffix == ".eml":
        return bool(known)
    return len(known) >= 2 and bool(names & _ORIGIN_FIELDS) and bool(names & _TRANSPORT_FIELDS)
