"""Outlook message (``.msg``) parser: the [MS-OXMSG] property streams of an OLE2
compound file, read with ``olefile`` (BSD).

Hand-written on top of olefile because the one maintained MSG library,
extract-msg, is GPL. It reads what the mail's text needs: subject, sender,
display To/Cc, the submit (else delivery) time, the plain body (else the HTML
body) and the attachments. An attached Outlook message is turned into an
``.eml`` (headers, body, its own attachments) so it is ingested like any mail.
"""

from __future__ import annotations

import codecs
import io
import logging
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import olefile

from ingestion.detect import MSG_MIME
from ingestion.errors import EmptyDocument, IngestionError, ParseError
from ingestion.parsers._decode import decode_text
from ingestion.parsers._mail import (
    MAX_ATTACHMENTS,
    MAX_NESTING,
    Mail,
    attachment_name,
    build_mail,
    header_lines,
    is_skipped,
)
from ingestion.parsers.base import Attachment, ParsedDocument

logger = logging.getLogger(__name__)

_PROPERTIES = "__properties_version1.0"
_ATTACH_PREFIX = "__attach_version1.0_#"
_EMBEDDED = "__substg1.0_3701000D"
# Property ids ([MS-OXPROPS]).
_SUBJECT, _SENDER_NAME, _SENDER_EMAIL, _SENDER_SMTP = 0x0037, 0x0C1A, 0x0C1F, 0x5D01
_SENT_REPRESENTING_NAME, _DISPLAY_TO, _DISPLAY_CC = 0x0042, 0x0E04, 0x0E03
_BODY, _HTML = 0x1000, 0x1013
_ATTACH_LONG_FILENAME, _ATTACH_FILENAME, _DISPLAY_NAME = 0x3707, 0x3704, 0x3001
_ATTACH_MIME_TAG, _ATTACH_CONTENT_ID = 0x370E, 0x3712
# Fixed-size properties in the properties stream: full tags (id << 16 | type).
_CLIENT_SUBMIT_TIME, _DELIVERY_TIME = 0x00390040, 0x0E060040
_MESSAGE_CODEPAGE, _INTERNET_CPID = 0x3FFD0003, 0x3FDE0003
_ATTACH_METHOD, _ATTACHMENT_HIDDEN = 0x37050003, 0x7FFE000B
_EMBEDDED_MESSAGE = 5  # PR_ATTACH_METHOD afEmbeddedMessage
# Header size of the properties stream: top-level message, embedded message, attachment.
_TOP_HEADER, _EMBEDDED_HEADER, _ATTACH_HEADER = 32, 24, 8
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


class MsgParser:
    """Parses ``application/vnd.ms-outlook``; ``ParseError`` for a damaged file."""

    mime_types: tuple[str, ...] = (MSG_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        try:
            with olefile.OleFileIO(io.BytesIO(data)) as ole:
                mail = _Reader(ole).message((), header=_TOP_HEADER, depth=0)
        except IngestionError:
            raise
        except Exception as e:  # olefile and struct report damage with assorted types
            raise ParseError(f"{filename}: the Outlook message is damaged: {e}") from e
        return build_mail(mail, mime=MSG_MIME, filename=filename)


class _Reader:
    def __init__(self, ole: olefile.OleFileIO) -> None:
        self.ole = ole
        self.entries = [tuple(p) for p in ole.listdir(streams=True, storages=True)]

    def message(self, prefix: tuple[str, ...], *, header: int, depth: int) -> Mail:
        props = self._props(prefix, header)
        codepage = _codec(props.get(_MESSAGE_CODEPAGE) or props.get(_INTERNET_CPID))

        def text(prop_id: int) -> str:
            return self._string(prefix, prop_id, codepage)

        subject = text(_SUBJECT)
        name = text(_SENDER_NAME) or text(_SENT_REPRESENTING_NAME)
        address = text(_SENDER_SMTP) or text(_SENDER_EMAIL)
        if address.startswith("/"):  # an Exchange (X.500) address says nothing to a reader
            address = ""
        sender = f"{name} <{address}>" if name and address and name != address else name or address
        when = props.get(_CLIENT_SUBMIT_TIME) or props.get(_DELIVERY_TIME)
        mail = Mail(
            subject=subject,
            headers=header_lines(
                sender=sender,
                to=text(_DISPLAY_TO),
                cc=text(_DISPLAY_CC),
                date=_filetime(when) if when else "",
                subject=subject,
            ),
            text=text(_BODY) or None,
            html=self._html(prefix, codepage),
        )
        for storage in sorted(self._children(prefix)):
            if storage.startswith(_ATTACH_PREFIX) and len(mail.attachments) < MAX_ATTACHMENTS:
                attachment = self._attachment((*prefix, storage), mail, depth, codepage)
                if attachment is not None:
                    mail.attachments.append(attachment)
        return mail

    def _attachment(
        self, path: tuple[str, ...], mail: Mail, depth: int, codepage: str
    ) -> Attachment | None:
        props = self._props(path, _ATTACH_HEADER)
        name = attachment_name(
            self._string(path, _ATTACH_LONG_FILENAME, codepage)
            or self._string(path, _ATTACH_FILENAME, codepage)
        )
        if props.get(_ATTACH_METHOD, 0) & 0xFFFFFFFF == _EMBEDDED_MESSAGE:
            if _EMBEDDED not in self._children(path) or depth + 1 > MAX_NESTING:
                return None
            inner = self.message((*path, _EMBEDDED), header=_EMBEDDED_HEADER, depth=depth + 1)
            name = attachment_name(self._string(path, _DISPLAY_NAME, codepage) or inner.subject)
            name = (name or "attached message").removesuffix(".msg")
            return Attachment(name if name.endswith(".eml") else f"{name}.eml", to_eml(inner))
        if is_skipped(
            name,
            content_type=self._string(path, _ATTACH_MIME_TAG, codepage),
            content_id=self._string(path, _ATTACH_CONTENT_ID, codepage),
            html=mail.html,
            hidden=bool(props.get(_ATTACHMENT_HIDDEN, 0) & 0xFF),
        ):
            return None
        data = self._stream((*path, "__substg1.0_37010102"))
        if data is None or name is None:  # an OLE object or a link, not a file
            return None
        return Attachment(name, data)

    def _children(self, prefix: tuple[str, ...]) -> set[str]:
        n = len(prefix)
        return {p[n] for p in self.entries if len(p) > n and p[:n] == prefix}

    def _stream(self, path: Sequence[str]) -> bytes | None:
        if not self.ole.exists("/".join(path)):
            return None
        return bytes(self.ole.openstream(list(path)).read())

    def _string(self, prefix: tuple[str, ...], prop_id: int, codepage: str) -> str:
        """A string property: UTF-16-LE (``001F``) or 8-bit in the message code page (``001E``)."""
        raw = self._stream((*prefix, f"__substg1.0_{prop_id:04X}001F"))
        if raw is not None:
            return raw.decode("utf-16-le", errors="replace").rstrip("\x00")
        raw = self._stream((*prefix, f"__substg1.0_{prop_id:04X}001E"))
        if raw is not None:
            return raw.rstrip(b"\x00").decode(codepage, errors="replace")
        return ""

    def _html(self, prefix: tuple[str, ...], codepage: str) -> str | None:
        raw = self._stream((*prefix, f"__substg1.0_{_HTML:04X}0102"))
        if raw:
            return decode_text(raw.rstrip(b"\x00"), declared=codepage)
        return self._string(prefix, _HTML, codepage) or None

    def _props(self, prefix: tuple[str, ...], header: int) -> dict[int, int]:
        """Fixed-size properties of the properties stream: tag -> its 8-byte value."""
        raw = self._stream((*prefix, _PROPERTIES)) or b""
        out: dict[int, int] = {}
        for offset in range(header, len(raw) - 15, 16):
            tag, _flags, value = struct.unpack_from("<IIQ", raw, offset)
            out[tag] = value
        return out


def to_eml(mail: Mail) -> bytes:
    """The mail as an RFC 5322 message: its headers, body and attachments."""
    message = EmailMessage()
    for label, value in mail.headers:
        try:
            message[label] = value
        except Exception:  # a display string that is not an address list ("Ann; Bob")
            message[f"X-Original-{label}"] = value
    if mail.text:
        message.set_content(mail.text)
        if mail.html:
            message.add_alternative(mail.html, subtype="html")
    elif mail.html:
        message.set_content(mail.html, subtype="html")
    for a in mail.attachments:
        message.add_attachment(a.data, "application", "octet-stream", filename=a.name)
    return message.as_bytes()


def _codec(codepage: int | None) -> str:
    """The Python codec of a Windows code page number; cp1252 when unknown."""
    if not codepage:
        return "cp1252"
    number = codepage & 0xFFFFFFFF
    try:
        return codecs.lookup("utf-8" if number == 65001 else f"cp{number}").name
    except LookupError:
        logger.info("unknown message code page %d; reading it as cp1252", number)
        return "cp1252"


def _filetime(value: int) -> str:
    """A FILETIME (100 ns ticks since 1601) as an RFC 5322 date; empty when out of range."""
    try:
        return format_datetime(_FILETIME_EPOCH + timedelta(microseconds=value // 10))
    except (OverflowError, ValueError):
        return ""
