"""E-mail (``.eml``, RFC 5322/MIME) parser on the standard library's ``email``
package (``policy.default``: RFC 2047 encoded words, RFC 2231 file names,
quoted-printable and base64 bodies, declared charsets)."""

from __future__ import annotations

import email
import logging
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message

from ingestion.detect import EML_MIME
from ingestion.errors import EmptyDocument, ParseError
from ingestion.parsers._decode import decode_text
from ingestion.parsers._mail import (
    MAX_ATTACHMENTS,
    Mail,
    attachment_name,
    build_mail,
    header_lines,
    is_skipped,
)
from ingestion.parsers.base import Attachment, ParsedDocument

logger = logging.getLogger(__name__)

#: MIME nesting followed inside one mail (multiparts in multiparts); deeper parts are ignored.
_MAX_PART_DEPTH = 50


class EmlParser:
    """Parses ``message/rfc822``: headers and body become the text, attached files
    (attached mails included, as ``.eml``) come back as attachments."""

    mime_types: tuple[str, ...] = (EML_MIME,)

    def parse(self, data: bytes, *, filename: str) -> ParsedDocument:
        if not data:
            raise EmptyDocument(f"{filename} is empty")
        message = email.message_from_bytes(data, policy=policy.default)
        if not isinstance(message, EmailMessage):  # policy.default builds EmailMessage
            raise ParseError(f"{filename} could not be read as an e-mail")
        return build_mail(read_message(message), mime=EML_MIME, filename=filename)


def read_message(message: EmailMessage) -> Mail:
    """The fields, body and attached files of a parsed message."""
    subject = _header(message, "subject")
    mail = Mail(
        subject=subject,
        headers=header_lines(
            sender=_header(message, "from"),
            to=_header(message, "to"),
            cc=_header(message, "cc"),
            date=_header(message, "date"),
            subject=subject,
        ),
    )
    plain = _body(message, "plain")
    html = _body(message, "html")
    mail.text = _text_of(plain) if plain is not None else None
    mail.html = _text_of(html) if html is not None else None
    extra: list[str] = []
    _collect(message, mail, {id(p) for p in (plain, html) if p is not None}, extra, 0)
    if extra and mail.text is not None:
        mail.text = "\n\n".join([mail.text, *extra])
    return mail


def _header(message: Message, name: str) -> str:
    """A header decoded (RFC 2047); a malformed one falls back to its raw text."""
    try:
        value = message.get(name)
        return str(value) if value is not None else ""
    except Exception:  # the header registry chokes on some malformed values
        raw = next((v for k, v in message.raw_items() if k.lower() == name), "")
        try:
            return str(make_header(decode_header(str(raw))))
        except Exception:
            return str(raw)


def _body(message: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except Exception:  # a broken MIME structure: no body of that kind
        logger.info("could not find the %s body of an e-mail", subtype)
        return None
    return part if isinstance(part, EmailMessage) else None


def _text_of(part: Message) -> str:
    """A text part decoded from its transfer encoding and (declared, else guessed) charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return ""
    return decode_text(payload, declared=part.get_content_charset())


def _collect(part: Message, mail: Mail, bodies: set[int], extra: list[str], depth: int) -> None:
    """Add ``part``'s attached files to ``mail`` (inline text parts go to ``extra``)."""
    if depth > _MAX_PART_DEPTH or len(mail.attachments) >= MAX_ATTACHMENTS:
        return
    content_type = part.get_content_type()
    if content_type == "message/rfc822" and depth > 0:
        _attach_message(part, mail)
        return
    if part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                _collect(sub, mail, bodies, extra, depth + 1)
        return
    if id(part) in bodies:
        return
    name = attachment_name(part.get_filename())
    if name is None and content_type == "text/plain" and depth > 0:
        if part.get_content_disposition() != "attachment":
            extra.append(_text_of(part))  # text between attachments (Apple Mail)
        return
    if is_skipped(
        name, content_type=content_type, content_id=str(part.get("content-id", "")), html=mail.html
    ):
        return
    assert name is not None  # is_skipped drops nameless parts
    payload = part.get_payload(decode=True)
    mail.attachments.append(Attachment(name, payload if isinstance(payload, bytes) else b""))


def _attach_message(part: Message, mail: Mail) -> None:
    """An attached mail becomes an ``.eml`` attachment, named by its file name or subject."""
    inner = part.get_payload(0) if isinstance(part.get_payload(), list) else None
    if not isinstance(inner, Message):
        return
    try:
        data = inner.as_bytes()
    except Exception as e:  # an attached mail that cannot be written back out
        logger.info("skipped an attached e-mail that cannot be serialised: %s", e)
        return
    name = attachment_name(part.get_filename()) or attachment_name(_header(inner, "subject"))
    name = name or "attached message"
    if not name.lower().endswith(".eml"):
        name += ".eml"
    mail.attachments.append(Attachment(name, data))
