"""What the e-mail parsers (EML, MSG) share: the mail read into plain fields, the
rule for which attached files become documents, and the document layout.

A mail becomes one page: a block of its headers (From, To, Cc, Date, Subject),
a line naming its attachments, then its body (the text/plain body, else the
HTML body's readable text through the HTML parser's walker). Its subject is
the title. Attached files come back as ``ParsedDocument.attachments``; the job
adds each as a document of its own, linked to the mail.

Which attached files are skipped: a part with no file name (an inline image, a
body part), one the HTML body shows (referenced as ``cid:``), one marked hidden
(MSG) and signatures (``smime.p7s``, PKCS#7 or PGP signatures). An attached mail
is kept (as ``.eml``) and parsed likewise when its own job runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import PurePath

from ingestion.errors import EmptyDocument
from ingestion.parsers._blocks import DocumentBuilder, normalize_newlines, one_line
from ingestion.parsers.base import Attachment, ParsedDocument
from ingestion.parsers.html import add_html

#: Attached files kept per mail; the rest are dropped (a mail is bounded by the
#: upload size limit, so this bounds the number of jobs one upload can start).
MAX_ATTACHMENTS = 100
#: How deep attached mails are followed inside one file (a mail in a mail in a mail).
MAX_NESTING = 3

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
_SIGNATURE_NAMES = frozenset({"smime.p7s", "signature.asc"})
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Mail:
    """A mail read into plain fields; ``headers`` are (label, value) in display order."""

    subject: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


def header_lines(
    *, sender: str, to: str, cc: str, date: str, subject: str
) -> list[tuple[str, str]]:
    """The headers a mail's text shows, in order, empty ones left out."""
    pairs = [("From", sender), ("To", to), ("Cc", cc), ("Date", date), ("Subject", subject)]
    return [(label, one_line(value)) for label, value in pairs if value and value.strip()]


def attachment_name(name: str | None) -> str | None:
    """A file name fit to keep: no folders, no control characters, at most 200 characters."""
    if not name:
        return None
    name = _UNSAFE_NAME.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if len(name) > 200:
        suffix = PurePath(name).suffix[:20]
        name = name[: 200 - len(suffix)] + suffix
    return name or None


def is_skipped(
    name: str | None, *, content_type: str, content_id: str, html: str | None, hidden: bool = False
) -> bool:
    """Whether an attached part is left out (see the module docstring for the rule)."""
    if not name or hidden:
        return True
    if content_type.lower() in _SIGNATURE_TYPES or name.lower() in _SIGNATURE_NAMES:
        return True
    cid = content_id.strip().strip("<>")
    return bool(cid and html and f"cid:{cid}" in html)


def build_mail(mail: Mail, *, mime: str, filename: str) -> ParsedDocument:
    """Lay the mail out as one page (headers, attachment names, body)."""
    attachments = _unique(mail.attachments[:MAX_ATTACHMENTS])
    builder = DocumentBuilder()
    builder.add("text", "\n".join(f"{label}: {value}" for label, value in mail.headers))
    if attachments:
        builder.add("text", "Attachments: " + ", ".join(a.name for a in attachments))
    if mail.text and mail.text.strip():
        for paragraph in _PARAGRAPH_BREAK.split(normalize_newlines(mail.text)):
            builder.add("text", paragraph)
    elif mail.html:
        add_html(builder, mail.html)
    if not builder.has_text:
        raise EmptyDocument(f"{filename}: the e-mail has no headers, body or attachments")
    parsed = builder.build(mime=mime, paginated=False, title=mail.subject or None)
    return replace(parsed, attachments=tuple(attachments))


def _unique(attachments: list[Attachment]) -> list[Attachment]:
    """Number repeated names (``a.pdf``, ``a (2).pdf``): each becomes a document of its own."""
    seen: set[str] = set()
    out = []
    for a in attachments:
        name, n = a.name, 1
        while name.lower() in seen:
            n += 1
            path = PurePath(a.name)
            name = f"{path.stem} ({n}){path.suffix}"
        seen.add(name.lower())
        out.append(a if name == a.name else Attachment(name, a.data))
    return out
