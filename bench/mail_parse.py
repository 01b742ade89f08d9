"""Parse speed of the e-mail parsers (mails/s), parsing only (no chunking or embedding).

Usage::

    python bench/mail_parse.py [--seconds 3]

Mails are built in memory with the test fixtures: a typical message (headers,
a text and an HTML body of ~2 KB, one 1-page PDF attachment of ~1 KB) as EML
and as MSG, and an HTML-only EML. Each is parsed repeatedly for ``--seconds``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingestion.parsers.eml import EmlParser
from ingestion.parsers.msg import MsgParser
from tests.fixtures.docs import make_pdf
from tests.fixtures.mail import make_eml, make_msg

BODY = "\n\n".join(
    f"Paragraph {i}: the shipment leaves the warehouse on Monday and reaches the "
    "customer within three working days, weather permitting."
    for i in range(15)
)
HTML = "".join(f"<p>{p}</p>" for p in BODY.split("\n\n"))


def rate(parse: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        parse()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    pdf = make_pdf(["The attached report."])
    eml = make_eml(subject="Shipping", text=BODY, html=HTML, attachments=[("r.pdf", pdf)])
    html_eml = make_eml(subject="Shipping", html=HTML)
    msg = make_msg(subject="Shipping", body=BODY, attachments=[("r.pdf", pdf)])
    cases = {
        f"EML text+HTML+PDF ({len(eml)} B)": lambda: EmlParser().parse(eml, filename="m.eml"),
        f"EML HTML only ({len(html_eml)} B)": lambda: EmlParser().parse(html_eml, filename="h.eml"),
        f"MSG text+PDF ({len(msg)} B)": lambda: MsgParser().parse(msg, filename="m.msg"),
    }
    for name, parse in cases.items():
        print(f"{name}: {rate(parse, args.seconds):,.0f} mails/s")


if __name__ == "__main__":
    main()
