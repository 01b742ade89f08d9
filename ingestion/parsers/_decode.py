"""Turning the bytes of a text format (TXT, Markdown, HTML) into ``str``.

Order: a byte-order mark wins, then an encoding the document declares (HTML
``<meta charset>``), then strict UTF-8, then a guess. The guess is windows-1252
whenever charset-normalizer finds it a plausible decoding, unless its best guess is
a multibyte CJK encoding: on short Western text it ranks the Latin code pages almost
at random and often picks cp1250 ("trčs", "nińo", "Joăo" for "très", "niño",
"João"), and windows-1252 is what browsers assume for undeclared pages. Text that
only another code page decodes sensibly (Cyrillic, Greek, Polish...) keeps
charset-normalizer's pick.
"""

from __future__ import annotations

import codecs
import logging

from charset_normalizer import from_bytes

from ingestion.errors import ParseError

logger = logging.getLogger(__name__)

# Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding named by a byte-order mark and the mark's length, if any."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


# Multibyte East Asian codecs (charset-normalizer's names): its pick among these is kept.
_CJK = frozenset(
    {
        "big5", "big5hkscs", "cp932", "cp949", "cp950", "euc_jis_2004", "euc_jisx0213",
        "euc_jp", "euc_kr", "gb18030", "gb2312", "gbk", "hz", "iso2022_jp", "iso2022_jp_1",
        "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext", "iso2022_kr",
        "johab", "shift_jis", "shift_jis_2004", "shift_jisx0213",
    }
)  # fmt: skip
# windows-1252 as the WHATWG Encoding Standard defines it: Python's cp1252 refuses the
# five bytes it leaves undefined, browsers show them as (invisible) C1 controls.
_WINDOWS_1252 = {
    byte: bytes([byte]).decode("cp1252", errors="ignore") or None for byte in range(0x80, 0xA0)
}
# Labels a page may declare that browsers read with a different (superset) encoding.
_WHATWG_LABELS = {
    **dict.fromkeys(
        ("ascii", "us-ascii", "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1",
         "cp1252", "windows-1252", "x-cp1252", "cp819", "ibm819"),
        "windows-1252",
    ),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "chinese", "csgb2312"), "gb18030"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji"), "cp932"),
    **dict.fromkeys(("euc-kr", "ks_c_5601-1987", "windows-949"), "cp949"),
    **dict.fromkeys(("big5", "cn-big5", "x-x-big5"), "big5hkscs"),
    **dict.fromkeys(("iso-8859-9", "latin5"), "cp1254"),
    **dict.fromkeys(("tis-620", "iso-8859-11"), "cp874"),
    # A meta tag found by scanning the bytes as ASCII cannot be right about UTF-16.
    **dict.fromkeys(("utf-16", "utf-16le", "utf-16be"), "utf-8"),
}  # fmt: skip


def html_charset(label: str) -> str:
    """The encoding a browser uses for a page declaring ``label`` (WHATWG rules for
    the labels that matter: ``iso-8859-1`` and ``ascii`` mean windows-1252, ``gb2312``
    means gb18030...)."""
    label = label.strip().lower()
    return _WHATWG_LABELS.get(label, label)


def windows_1252(data: bytes) -> str:
    """``data`` as windows-1252, which decodes any bytes."""
    return data.decode("latin-1").translate(_WINDOWS_1252)


def decode_text(data: bytes, *, declared: str | None = None, html: bool = False) -> str:
    """Decode ``data`` or raise ``ParseError("could not detect the text encoding ...")``.

    ``html``: ``declared`` is read by browser rules (``html_charset``) and bytes no
    guess fits are read as windows-1252, as browsers do, instead of raising."""
    bom = bom_encoding(data)
    if bom is not None:
        encoding, skip = bom
        try:
            return data[skip:].decode(encoding)
        except UnicodeDecodeError as e:
            raise ParseError(f"the text claims to be {encoding} but is not: {e.reason}") from e
    if declared:
        encoding = html_charset(declared) if html else declared
        if encoding == "windows-1252":
            return windows_1252(data)
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            logger.info("declared charset %r does not decode the document; guessing", declared)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        if html:
            return windows_1252(data)
        raise ParseError(
            "could not detect the text encoding; save the file as UTF-8 and upload it again"
        )
    if best.encoding not in _CJK and any("cp1252" in m.could_be_from_charset for m in matches):
        logger.debug("guessed text encoding windows-1252 (best guess %s)", best.encoding)
        return windows_1252(data)
    logger.debug("guessed text encoding %s", best.encoding)
    return str(best)
