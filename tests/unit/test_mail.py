"""E-mail parsing and detection: EML (standard library) and MSG (olefile), and the
OLE2 branch of detection (Outlook, Excel, encrypted OOXML, legacy Word)."""

from __future__ import annotations

import io
import struct

import olefile
import pytest

from ingestion.detect import EML_MIME, MSG_MIME, TEXT_MIME, XLS_MIME, detect_type
from ingestion.errors import EncryptedDocument, ParseError, UnsupportedFormat
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.eml import EmlParser
from ingestion.parsers.msg import MsgParser
from tests.fixtures import docs
from tests.fixtures.mail import make_eml, make_msg
from tests.fixtures.ole import make_ole


def text_of(parsed: ParsedDocument) -> str:
    [page] = parsed.pages
    for e in parsed.elements:  # every element is an exact slice of the page
        assert parsed.element_text(e) == page.text[e.start : e.end]
    return page.text


# -- the fixture writer ------------------------------------------------------------------


def test_the_compound_file_writer_is_read_back_by_olefile() -> None:
    streams = {
        "small": b"tiny",
        "edge": bytes(range(256)) * 16,  # exactly the 4096-byte cutoff: a regular stream
        "store/big": b"B" * 70_000,
        "store/inner/deep": b"deep one",
        "empty": b"",
    }
    ole = olefile.OleFileIO(io.BytesIO(make_ole(streams)))
    assert sorted("/".join(p) for p in ole.listdir()) == sorted(streams)
    for path, data in streams.items():
        assert ole.openstream(path).read() == data, path


# -- EML ---------------------------------------------------------------------------------

RAW_EML = (
    b"Return-Path: <ann@example.com>\r\n"
    b"From: =?utf-8?q?Jos=C3=A9_Garc=C3=ADa?= <jose@example.com>\r\n"
    b"To: team@example.com\r\n"
    b"Cc: =?iso-8859-1?b?UmVu6Q==?= <rene@example.com>\r\n"
    b"Subject: =?utf-8?b?UsOpc3Vtw6kgZGVzIHZlbnRlcw==?=\r\n"
    b"Date: Tue, 03 Nov 2026 10:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b'Content-Type: multipart/related; boundary="b2"\r\n'
    b"\r\n"
    b"--b2\r\n"
    b'Content-Type: text/html; charset="iso-8859-1"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<html><body><p>Les ventes ont augment=E9 de douze pour cent.</p>"
    b'<img src=3D"cid:logo@x"></body></html>\r\n'
    b"--b2\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-ID: <logo@x>\r\n"
    b'Content-Disposition: inline; filename="logo.png"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"iVBORw0KGgo=\r\n"
    b"--b2--\r\n"
    b"--b1\r\n"
    b"Content-Type: image/gif\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"R0lGODlh\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pdf; name="=?utf-8?q?ventes_r=C3=A9gion.pdf?="\r\n'
    b"Content-Disposition: attachment; filename*=utf-8''ventes%20r%C3%A9gion.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
    b'Content-Disposition: attachment; filename="smime.p7s"\r\n'
    b"\r\n"
    b"c2ln\r\n"
    b"--b1--\r\n"
)


def test_an_eml_with_encoded_headers_and_an_html_body_reads_as_text() -> None:
    assert detect_type(RAW_EML, "upload.bin").mime == EML_MIME
    parsed = EmlParser().parse(RAW_EML, filename="ventes.eml")
    text = text_of(parsed)
    assert parsed.title == "Résumé des ventes"
    assert "From: José García <jose@example.com>" in text
    assert "Cc: René <rene@example.com>" in text
    assert "Date: Tue, 03 Nov 2026 10:00:00 +0100" in text
    assert "Les ventes ont augmenté de douze pour cent." in text  # QP, latin-1, HTML
    # The logo the HTML shows, the nameless GIF and the signature are not attachments.
    assert [(a.name, a.data) for a in parsed.attachments] == [("ventes région.pdf", b"%PDF-1.4\n")]
    assert "Attachments: ventes région.pdf" in text


def test_the_plain_body_is_preferred_and_an_attached_mail_becomes_an_eml() -> None:
    inner = make_eml(subject="Original request", text="Please send the budget by Friday.")
    data = make_eml(
        subject="Fwd: budget",
        text="See the request below.",
        html="<p>HTML version of the body</p>",
        attachments=[("budget.xlsx", b"PK\x03\x04"), ("budget.xlsx", b"PK\x03\x04 v2")],
        attached_mails=[inner],
    )
    parsed = EmlParser().parse(data, filename="fwd.eml")
    text = text_of(parsed)
    assert "See the request below." in text
    assert "HTML version" not in text
    names = [a.name for a in parsed.attachments]
    assert names == ["budget.xlsx", "budget (2).xlsx", "Original request.eml"]
    nested = EmlParser().parse(parsed.attachments[2].data, filename="Original request.eml")
    assert "Please send the budget by Friday." in text_of(nested)


def test_mail_detection_by_content_and_extension() -> None:
    mail = make_eml(subject="Hello", text="Body")
    assert detect_type(mail, "note").mime == EML_MIME
    assert detect_type(b"From: Ann\nTo: Bob\n\nlunch?", "lunch.eml").mime == EML_MIME
    mbox_style = b"From ann@example.com Tue Nov  3 10:00:00 2026\n" + mail
    assert detect_type(mbox_style, "saved").mime == EML_MIME
    for note in (
        b"From: the desk of Ann\nPlease water the plants while I am away.\n",
        b"From: Ann\nTo: Bob\n\nJust a note saved as text, no mail headers.\n",
        b"Subject: minutes\n\nWe met on Monday.\n",
    ):
        assert detect_type(note, "note.txt").mime == TEXT_MIME, note


# -- MSG ---------------------------------------------------------------------------------


def test_an_msg_reads_its_headers_body_date_and_attachments() -> None:
    pdf = docs.make_pdf(["The attached quarterly report."])
    data = make_msg(
        subject="Quarterly numbers",
        body="Revenue grew by twelve percent this quarter.",
        to="Team; Finance",
        cc="Board",
        attachments=[("report.pdf", pdf), ("smime.p7s", b"sig")],
        embedded=[{"subject": "Earlier thread", "body": "The forecast was ten percent."}],
    )
    assert detect_type(data, "mail.bin").mime == MSG_MIME
    parsed = MsgParser().parse(data, filename="q.msg")
    text = text_of(parsed)
    assert parsed.title == "Quarterly numbers"
    assert text.startswith(
        "From: Ann Lee <ann@example.com>\nTo: Team; Finance\nCc: Board\n"
        "Date: Thu, 05 Nov 2026 09:30:00 +0000\nSubject: Quarterly numbers"
    )
    assert "Revenue grew by twelve percent this quarter." in text
    assert [a.name for a in parsed.attachments] == ["report.pdf", "Earlier thread.eml"]
    assert parsed.attachments[0].data == pdf
    nested = parsed.attachments[1].data
    assert detect_type(nested, "Earlier thread.eml").mime == EML_MIME
    assert "The forecast was ten percent." in text_of(EmlParser().parse(nested, filename="e.eml"))


def test_an_msg_with_8bit_strings_an_html_body_and_inline_and_hidden_attachments() -> None:
    cp1251 = 0x3FFD0003  # PR_MESSAGE_CODEPAGE
    html = '<html><body><p>Продажи выросли.</p><img src="cid:chart01"></body></html>'
    streams = {
        "__properties_version1.0": bytes(32) + struct.pack("<IIQ", cp1251, 6, 1251),
        "__substg1.0_0037001E": "Отчёт".encode("cp1251"),
        "__substg1.0_10130102": html.encode("cp1251"),
    }
    attachments = {  # storage -> (file name, extra string properties, hidden)
        "#00000000": ("chart.png", {"3712": "chart01"}, False),  # shown by the HTML body
        "#00000001": ("hidden.txt", {}, True),
        "#00000002": ("план.txt", {}, False),
    }
    for storage, (name, extra, hidden) in attachments.items():
        base = f"__attach_version1.0_{storage}/"
        streams[base + "__properties_version1.0"] = bytes(8) + struct.pack(
            "<IIQ", 0x7FFE000B, 6, int(hidden)
        )
        streams[base + "__substg1.0_3707001E"] = name.encode("cp1251")
        streams[base + "__substg1.0_37010102"] = b"data of " + name.encode()
        for prop, value in extra.items():
            streams[base + f"__substg1.0_{prop}001F"] = value.encode("utf-16-le")
    parsed = MsgParser().parse(make_ole(streams), filename="r.msg")
    assert parsed.title == "Отчёт"
    assert "Продажи выросли." in text_of(parsed)
    assert [a.name for a in parsed.attachments] == ["план.txt"]


def test_a_damaged_msg_fails_with_a_reason() -> None:
    data = make_msg(subject="x", body="y")
    with pytest.raises(ParseError, match="damaged"):
        MsgParser().parse(data[:1600], filename="cut.msg")


# -- the OLE2 branch of detection -------------------------------------------------------


def test_ole2_files_are_told_apart_by_their_streams() -> None:
    assert detect_type(make_ole({"Workbook": bytes(700)}), "old.xls").mime == XLS_MIME
    assert detect_type(make_ole({"Book": bytes(700)}), "older.xls").mime == XLS_MIME
    encrypted = make_ole({"EncryptionInfo": bytes(200), "EncryptedPackage": bytes(5000)})
    with pytest.raises(EncryptedDocument, match="password-protected Office file"):
        detect_type(encrypted, "secret.docx")
    with pytest.raises(UnsupportedFormat, match=r"legacy \.doc/\.ppt"):
        detect_type(make_ole({"PowerPoint Document": bytes(700)}), "deck.ppt")
    with pytest.raises(ParseError, match="damaged"):
        detect_type(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), "junk.doc")
