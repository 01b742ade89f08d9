"""Seconds and peak memory for ingesting huge inputs, each in a fresh ``lantern ingest``.

Usage::

    python bench/huge_inputs.py /tmp/huge                  # make the files, ingest each
    python bench/huge_inputs.py /tmp/huge --only word.txt  # one of them
    python bench/huge_inputs.py /tmp/huge --fake-model normal.txt

Inputs (written once, then reused; deterministic):

- ``word.txt``: 90 MB of one "word" (letters, no whitespace at all);
- ``normal.txt``: 90 MB of generated prose in paragraphs;
- ``book.pdf``: a 500-page PDF (fpdf2, Helvetica);
- ``table.docx``: a ~60 KB DOCX whose ``word/document.xml`` is ~14 MB (a
  60,000-row table), under the zip-bomb ratio floor;
- ``tiny.txt``: one sentence, for the floor (model, database, indexes loaded).

Each file is ingested by ``lantern ingest`` in a child process with its own
temporary ``LANTERN_DATA_DIR`` (sharing one ONNX export cache, so no run pays for
the export) and ``LANTERN_INGESTION__MAX_FILE_MB=200`` (the default limit is 100
MB). The parent reads the child's peak RSS from ``os.wait4`` (``ru_maxrss``) and
kills a child whose RSS passes ``--rss-cap-gb`` (default 8), so a bad run cannot
take the machine down. After the run it reads the document's status, chunk count
and longest chunk from the child's SQLite database.

``--fake-model NAME`` (repeatable) keeps everything real (parsing, the model's
tokenizer, chunking, SQLite, FAISS, BM25) except the ONNX forward pass, which
returns hash-derived unit vectors. Embedding the 90 MB of prose for real takes
about an hour on 2 cores; the memory it needs does not depend on the document.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
NAMES = ("tiny.txt", "word.txt", "normal.txt", "book.pdf", "table.docx")
sys.path.insert(0, str(REPO / "bench"))


# -- inputs ------------------------------------------------------------------------


def make_word(path: Path, size: int = 90 * MB) -> None:
    unit = b"abcdefghijklmnopqrstuvwxyz" * 40
    with path.open("wb") as f:
        for _ in range(size // len(unit)):
            f.write(unit)
        f.write(unit[: size % len(unit)])


def make_normal(path: Path, size: int = 90 * MB) -> None:
    from make_corpus import _generated

    rng = random.Random(7)
    paragraphs = [_generated(rng)[1] for _ in range(400)]
    written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < size:
            p = rng.choice(paragraphs) + "\n\n"
            f.write(p)
            written += len(p)


def make_pdf(path: Path, pages: int = 500) -> None:
    from fpdf import FPDF
    from make_corpus import _generated

    rng = random.Random(11)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_font("Helvetica", "", 10.5)
    for n in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 7, f"Section {n + 1}", new_x="LMARGIN", new_y="NEXT")
        text = ""
        while len(text) < 3200:  # about a page of 10.5 pt text
            text += _generated(rng)[1] + " "
        pdf.multi_cell(0, 5.2, text.strip(), new_x="LMARGIN", new_y="NEXT")
    path.write_bytes(bytes(pdf.output()))


def make_table_docx(path: Path, rows: int = 60_000) -> None:
    """A DOCX with one huge table whose first column is one vertically merged cell,
    written as raw XML (python-docx would take minutes)."""
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    cell = "<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>"
    merged = '<w:tc><w:tcPr><w:vMerge w:val="{}"/></w:tcPr><w:p>{}</w:p></w:tc>'
    first = merged.format("restart", "<w:r><w:t>Warehouse 7</w:t></w:r>")
    below = merged.format("continue", "")
    body = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {w}><w:body>']
    body.append("<w:p><w:r><w:t>Inventory</w:t></w:r></w:p><w:tbl>")
    for i in range(rows):
        body.append(
            "<w:tr>"
            + (below if i else first)
            + cell.format(f"item {i}")
            + cell.format("in stock")
            + cell.format(f"{i % 97} units")
            + "</w:tr>"
        )
    body.append("</w:tbl><w:sectPr/></w:body></w:document>")
    xml = "".join(body).encode()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for item in src.infolist():
            data = xml if item.filename == "word/document.xml" else src.read(item.filename)
            z.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)
    path.write_bytes(out.getvalue())


MAKERS: dict[str, Callable[[Path], None]] = {
    "tiny.txt": lambda p: p.write_text("The canteen opens at noon.\n", encoding="utf-8"),
    "word.txt": make_word,
    "normal.txt": make_normal,
    "book.pdf": make_pdf,
    "table.docx": make_table_docx,
}


# -- one ingest in a child ---------------------------------------------------------


def child(path: str, fake_model: bool) -> None:
    """Runs in the child: ``lantern ingest PATH`` (with the fake forward pass if asked)."""
    if fake_model:
        import hashlib

        import numpy as np

        from retrieval.embedders import onnx_embedder
        from retrieval.embedders.onnx_embedder import OnnxEmbedder

        def run(self: OnnxEmbedder, batch: dict[str, list[list[int]]]) -> np.ndarray:
            rows = []
            for ids in batch["input_ids"]:
                seed = int.from_bytes(hashlib.sha256(repr(ids).encode()).digest()[:8], "little")
                v = np.random.default_rng(seed).standard_normal(self.dimension)
                rows.append(v / np.linalg.norm(v))
            return np.asarray(rows, dtype=np.float32)

        OnnxEmbedder._run = run  # type: ignore[method-assign,assignment]
        # Else the load-time check against torch fails and torch embeds for real.
        onnx_embedder._worst_cosine = lambda candidate, reference: 1.0
    from app.cli.main import main

    sys.argv = ["lantern", "ingest", path, "--no-progress", "--workers", "1"]
    main()


def peak_rss_of(cmd: list[str], env: dict[str, str], cap: int) -> tuple[int, float, int, bool]:
    """Run ``cmd``; return (exit status, seconds, peak RSS bytes, killed at the cap)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = threading.Event()
    output: list[bytes] = []
    threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True).start()  # type: ignore[union-attr]

    def watch() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while proc.returncode is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:") and int(line.split()[1]) * 1024 > cap:
                        killed.set()
                        os.kill(proc.pid, signal.SIGKILL)
            except (OSError, ValueError):
                return
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if os.environ.get("BENCH_VERBOSE"):
        time.sleep(0.2)
        sys.stdout.write(b"".join(output).decode(errors="replace"))
    return proc.returncode, seconds, usage.ru_maxrss * 1024, killed.is_set()


def document_facts(data_dir: Path) -> dict[str, object]:
    db = data_dir / "lantern.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        status, error, timings = con.execute(
            "select status, error, timings from documents"
        ).fetchone() or ("", None, None)
        n, longest, tokens = con.execute(
            "select count(*), max(length(text)), max(token_count) from chunks"
        ).fetchone()
    return {
        "status": status,
        "error": error,
        "chunks": n,
        "longest_chunk_chars": longest,
        "max_token_count": tokens,
        "timings": json.loads(timings) if timings else None,
    }


def ingest(path: Path, *, models: Path, fake_model: bool, cap: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="lantern-huge-") as tmp:
        data_dir = Path(tmp)
        (data_dir / "models").symlink_to(models)
        env = {
            **os.environ,
            "LANTERN_DATA_DIR": str(data_dir),
            "LANTERN_INGESTION__MAX_FILE_MB": "200",
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
            "PYTHONPATH": str(REPO),
        }
        cmd = [sys.executable, __file__, str(path.parent), "--child", str(path)]
        if fake_model:
            cmd.append("--fake")
        code, seconds, rss, killed = peak_rss_of(cmd, env, cap)
        facts = document_facts(data_dir)
    return {
        "file": path.name,
        "mb": round(path.stat().st_size / MB, 1),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(rss / MB),
        "exit": code,
        "killed_at_cap": killed,
        "fake_model": fake_model,
        **facts,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir", type=Path, help="where the inputs are written (and reused)")
    ap.add_argument("--only", action="append", choices=NAMES, help="ingest only these")
    ap.add_argument("--fake-model", action="append", default=[], choices=NAMES)
    ap.add_argument("--rss-cap-gb", type=float, default=8.0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.fake)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    models = args.dir / "models"
    models.mkdir(exist_ok=True)
    results = []
    for name in args.only or NAMES:
        path = args.dir / name
        if not path.exists():
            t = time.perf_counter()
            MAKERS[name](path)
            size, seconds = path.stat().st_size / MB, time.perf_counter() - t
            print(f"wrote {path} ({size:.1f} MB) in {seconds:.0f}s")
        r = ingest(
            path,
            models=models,
            fake_model=name in args.fake_model,
            cap=int(args.rss_cap_gb * 1024**3),
        )
        print(json.dumps(r), flush=True)
        results.append(r)
    print("\n| file | MB | fake model | status | chunks | longest chunk | seconds | peak RSS MB |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for r in results:
        status = "killed at cap" if r["killed_at_cap"] else r.get("status", f"exit {r['exit']}")
        print(
            f"| {r['file']} | {r['mb']} | {'yes' if r['fake_model'] else 'no'} | {status} | "
            f"{r.get('chunks', '')} | {r.get('longest_chunk_chars', '')} | {r['seconds']} | "
            f"{r['peak_rss_mb']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
