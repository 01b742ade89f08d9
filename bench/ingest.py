"""Benchmark Lantern's ingestion stages over a folder, and its PDF parser against pdfminer.six.

Usage::

    python bench/ingest.py /tmp/corpus [--max-docs N] [--repeat 1] [--json out.json]
                                       [--model NAME_OR_DIR] [--no-pdfminer]

Runs offline (``HF_HUB_OFFLINE=1`` unless set); ``BENCH_TRACEBACK=1`` prints the
traceback of each failing file.

Every file goes through the production pieces wired by ``app.container.Container``:
``IngestionPipeline.prepare`` (detect+parse, chunk, embed, with its own per-stage
timings), then a FAISS upsert + flush into a temporary directory, as the job runner
does per document. Then the same PDFs are parsed by Lantern's ``PdfParser``
(pypdfium2) and by pdfminer.six's ``extract_pages`` (the engine behind
unstructured's ``fast`` strategy). Prints markdown tables; ``--json`` writes the
numbers. A file that fails is counted and reported, not fatal.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STAGES = ("parse", "ocr", "chunk", "embed", "index")
STAGE_LABELS = {
    "parse": "parse (detect+parse, OCR aside)",
    "ocr": "ocr (pages without text; pages/s of those pages)",
    "chunk": "chunk",
    "embed": "embed",
    "index": "index (FAISS upsert+flush)",
}
COLLECTION = "bench"


@dataclass
class FileResult:
    name: str
    format: str
    bytes: int
    pages: int = 0
    ocr_pages: int = 0
    chunks: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Run:
    wall: float
    cpu: float  # this process's CPU seconds; well under wall x threads means contention
    files: list[FileResult]

    @property
    def ok(self) -> list[FileResult]:
        return [f for f in self.files if f.error is None]

    def stage(self, name: str, files: list[FileResult] | None = None) -> float:
        return sum(f.timings.get(name, 0.0) for f in (self.ok if files is None else files))


# -- running ---------------------------------------------------------------------------


def select_files(folder: Path, max_docs: int | None) -> list[Path]:
    """Every regular file in ``folder``; with ``max_docs``, round-robin across
    extensions so a small sample keeps the format mix."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if max_docs is None or max_docs >= len(files):
        return files
    by_ext: dict[str, list[Path]] = {}
    for p in files:
        by_ext.setdefault(p.suffix.lower(), []).append(p)
    queues = list(by_ext.values())
    picked: list[Path] = []
    while len(picked) < max_docs:
        for q in queues:
            if q and len(picked) < max_docs:
                picked.append(q.pop(0))
    return sorted(picked)


def run_once(container: Any, files: list[Path], index_dir: Path) -> Run:
    """One pass over ``files`` through prepare + index, each stage timed."""
    from ingestion.chunking import chunk_id
    from ingestion.detect import EXTENSIONS
    from retrieval.vectorstores.base import VectorRecord

    pipeline = container.pipeline
    store = container.open_vector_store(index_dir)
    results: list[FileResult] = []

    def progress(stage: str, fraction: float) -> None:
        pass

    started, cpu = time.perf_counter(), time.process_time()
    try:
        for n, path in enumerate(files):
            data = path.read_bytes()
            res = FileResult(path.name, path.suffix.lower().lstrip(".") or "?", len(data))
            results.append(res)
            try:
                prepared = pipeline.prepare(data, filename=path.name, progress=progress)
                res.format = EXTENSIONS[prepared.mime].lstrip(".")
                res.pages, res.chunks = len(prepared.parsed.pages), len(prepared.chunks)
                res.ocr_pages = prepared.parsed.ocr_pages
                res.timings = dict(prepared.timings)
                t = time.perf_counter()
                doc_id = f"doc-{n:05d}"
                ids = [chunk_id(doc_id, c.ordinal, c.content_hash) for c in prepared.chunks]
                store.upsert(
                    [
                        VectorRecord(cid, doc_id, COLLECTION, prepared.vectors[i])
                        for i, cid in enumerate(ids)
                    ]
                )
                store.flush()
                res.timings["index"] = time.perf_counter() - t
            except Exception as e:  # counted and reported, never fatal
                res.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                if os.environ.get("BENCH_TRACEBACK"):
                    traceback.print_exc()
    finally:
        store.close()
    return Run(time.perf_counter() - started, time.process_time() - cpu, results)


def compare_pdf(parser: Any, pdfs: list[Path]) -> dict[str, Any]:
    """Lantern's PDF parser vs pdfminer.six on the same bytes, file by file."""
    from importlib.metadata import version

    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    sides: dict[str, dict[str, Any]] = {
        "lantern": {"engine": f"Lantern PdfParser (pypdfium2 {version('pypdfium2')})"},
        "pdfminer": {"engine": f"pdfminer.six {version('pdfminer.six')} extract_pages"},
    }
    for side in sides.values():
        side.update(files=0, pages=0, seconds=0.0, chars=0, errors=0)
    for path in pdfs:
        data = path.read_bytes()
        t = time.perf_counter()
        try:
            parsed = parser.parse(data, filename=path.name)
            pages, chars = len(parsed.pages), sum(len(p.text) for p in parsed.pages)
        except Exception:
            sides["lantern"]["errors"] += 1
        else:
            _add(sides["lantern"], pages, chars, time.perf_counter() - t)
        t = time.perf_counter()
        try:
            pages = chars = 0
            for layout in extract_pages(io.BytesIO(data)):
                pages += 1
                chars += sum(len(el.get_text()) for el in layout if isinstance(el, LTTextContainer))
        except Exception:
            sides["pdfminer"]["errors"] += 1
        else:
            _add(sides["pdfminer"], pages, chars, time.perf_counter() - t)
    for side in sides.values():
        side["pages_per_s"] = side["pages"] / side["seconds"] if side["seconds"] else 0.0
    lantern, miner = sides["lantern"]["pages_per_s"], sides["pdfminer"]["pages_per_s"]
    return {**sides, "speedup": lantern / miner if miner else None}


def _add(side: dict[str, Any], pages: int, chars: int, seconds: float) -> None:
    side["files"] += 1
    side["pages"] += pages
    side["chars"] += chars
    side["seconds"] += seconds


def environment(container: Any) -> dict[str, Any]:
    """Load the embedder (timed, outside the stages) and describe the machine."""
    import torch

    t = time.perf_counter()
    embedder = container.embedder
    embedder.embed_documents(["warm-up so the first batch does not pay for lazy init"])
    load = time.perf_counter() - t
    chunker = container.chunker
    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus_usable = os.cpu_count() or 0
    return {
        "embedder": embedder.model_name,
        "embedder_fallback": embedder.is_fallback,
        "runtime": getattr(embedder, "backend", "torch"),
        "dimension": embedder.dimension,
        "batch_size": container.settings.embedding.batch_size,
        "device": container.settings.embedding.device,
        "model_load_s": load,
        "chunk_max_tokens": chunker.max_tokens,
        "chunk_overlap_tokens": chunker.overlap_tokens,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpus_usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# -- reporting --------------------------------------------------------------------------


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.1f}" if seconds > 0 else "-"


def summary(run: Run) -> dict[str, Any]:
    ok = run.ok
    pages, chunks = sum(f.pages for f in ok), sum(f.chunks for f in ok)
    stages = {s: run.stage(s) for s in STAGES}
    per_format: dict[str, dict[str, Any]] = {}
    for fmt in sorted({f.format for f in run.files}):
        files = [f for f in run.files if f.format == fmt]
        good = [f for f in files if f.error is None]
        per_format[fmt] = {
            "files": len(files),
            "errors": len(files) - len(good),
            "pages": sum(f.pages for f in good),
            "chunks": sum(f.chunks for f in good),
            **{f"{s}_s": run.stage(s, good) for s in STAGES},
        }
    return {
        "files": len(run.files),
        "errors": len(run.files) - len(ok),
        "pages": pages,
        "ocr_pages": sum(f.ocr_pages for f in ok),
        "chunks": chunks,
        "bytes": sum(f.bytes for f in run.files),
        "stages_s": stages,
        "sum_of_stages_s": sum(stages.values()),
        "wall_s": run.wall,
        "cpu_s": run.cpu,
        "per_format": per_format,
    }


def render(
    folder: Path, env: dict[str, Any], s: dict[str, Any], pdf: dict[str, Any], repeats: list[float]
) -> str:
    out: list[str] = []
    formats = ", ".join(f"{v['files']} {k}" for k, v in s["per_format"].items())
    fallback = " (bundled fallback)" if env["embedder_fallback"] else ""
    best = f"best of {len(repeats)} by wall time" if len(repeats) > 1 else "1 run"
    out += [
        "## Lantern ingestion benchmark",
        "",
        f"- corpus: `{folder}`: {s['files']} files ({formats}), {s['bytes'] / 1e6:.1f} MB; "
        f"{s['pages']} pages ({s['ocr_pages']} read by OCR), {s['chunks']} chunks; "
        f"{s['errors']} errors",
        f"- embedder: {env['embedder']}{fallback} on {env['runtime']}, dim {env['dimension']}, "
        f"batch {env['batch_size']}, device {env['device']}, load {env['model_load_s']:.1f} s "
        "(not in the stages)",
        f"- chunker: max {env['chunk_max_tokens']} tokens, overlap {env['chunk_overlap_tokens']}",
        f"- torch {env['torch']}, {env['torch_threads']} threads; {env['cpu_count']} CPUs "
        f"({env['cpus_usable']} usable); Python {env['python']}",
        f"- {best}: process CPU {s['cpu_s']:.0f} s over {s['wall_s']:.0f} s wall "
        f"({s['cpu_s'] / s['wall_s']:.2f} cores busy); load average {env['loadavg']}",
        "- pages: PDF pages and PPTX slides; 1 per DOCX/HTML/Markdown file",
        "",
        "| stage | seconds | share | pages/s | chunks/s |",
        "|---|---:|---:|---:|---:|",
    ]
    total = s["sum_of_stages_s"]
    for name in STAGES:
        sec = s["stages_s"][name]
        share = f"{100 * sec / total:.1f}%" if total else "-"
        pages = s["ocr_pages"] if name == "ocr" else s["pages"]
        out.append(
            f"| {STAGE_LABELS[name]} | {sec:.2f} | {share} | {_rate(pages, sec)} "
            f"| {_rate(s['chunks'], sec)} |"
        )
    for label, sec in (("sum of stages", total), ("**end to end (wall)**", s["wall_s"])):
        out.append(
            f"| {label} | {sec:.2f} | | {_rate(s['pages'], sec)} | {_rate(s['chunks'], sec)} |"
        )
    out += [
        "",
        "| format | files | pages | chunks | parse s | ocr s | chunk s | embed s | index s "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fmt, v in s["per_format"].items():
        cells = " | ".join(f"{v[f'{st}_s']:.2f}" for st in STAGES)
        out.append(
            f"| {fmt} | {v['files']} | {v['pages']} | {v['chunks']} | {cells} | {v['errors']} |"
        )
    out += [
        "",
        "PDF text extraction, same files:",
        "",
        "| engine | files | pages | seconds | pages/s | chars/page | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key in ("lantern", "pdfminer"):
        v = pdf[key]
        per_page = f"{v['chars'] / v['pages']:,.0f}" if v["pages"] else "-"
        out.append(
            f"| {v['engine']} | {v['files']} | {v['pages']} | {v['seconds']:.2f} "
            f"| {v['pages_per_s']:,.1f} | {per_page} | {v['errors']} |"
        )
    if pdf["speedup"]:
        out += ["", f"Lantern's PDF parser is **{pdf['speedup']:.1f}x** faster than pdfminer.six."]
    return "\n".join(out)


def render_errors(run: Run) -> str:
    failed = [f for f in run.files if f.error]
    if not failed:
        return ""
    kinds = Counter(f.error.split(":", 1)[0] for f in failed if f.error)
    lines = ["", "", f"Errors ({', '.join(f'{n} {k}' for k, n in kinds.items())}):", ""]
    lines += [f"- `{f.name}`: {f.error}" for f in failed]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="folder of documents (see bench/make_corpus.py)")
    ap.add_argument("--max-docs", type=int, default=None, help="use at most N files")
    ap.add_argument("--repeat", type=int, default=1, help="passes; the fastest is reported")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument(
        "--model",
        default=None,
        help="embedding model (default: Lantern's setting; offline it falls back to the "
        "bundled all-MiniLM-L6-v2)",
    )
    ap.add_argument("--no-pdfminer", action="store_true", help="skip the pdfminer comparison")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        ap.error(f"{args.dir} is not a folder")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    files = select_files(args.dir, args.max_docs)
    if not files:
        ap.error(f"{args.dir} has no files")

    # Offline by default: no hub retries, and the loud fallback to the bundled MiniLM.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(REPO))
    from app.container import Container
    from app.settings import Settings
    from ingestion.detect import PDF_MIME

    with tempfile.TemporaryDirectory(prefix="lantern-bench-") as tmp:
        # LANTERN_EMBEDDING__* variables apply (e.g. BACKEND=torch, QUANTIZE=true).
        settings = Settings(data_dir=Path(tmp) / "data")
        if args.model:
            settings.embedding.model = args.model
        container = Container(settings)
        try:
            env = environment(container)
            print(f"embedder {env['embedder']} loaded in {env['model_load_s']:.1f} s", flush=True)
            runs = []
            for i in range(args.repeat):
                run = run_once(container, files, Path(tmp) / f"index-{i}")
                print(f"pass {i + 1}: {len(files)} files in {run.wall:.1f} s", flush=True)
                runs.append(run)
            best = min(runs, key=lambda r: r.wall)
            pdfs = [args.dir / f.name for f in best.files if f.format == "pdf"]
            if args.no_pdfminer or not pdfs:
                pdf = _empty_comparison()
            else:
                print(f"parsing {len(pdfs)} PDFs with pypdfium2 and pdfminer.six...", flush=True)
                pdf = compare_pdf(container.parsers.get(PDF_MIME), pdfs)
        finally:
            container.close()

    s = summary(best)
    print()
    print(render(args.dir, env, s, pdf, [r.wall for r in runs]) + render_errors(best))
    if args.json:
        payload = {
            "environment": env,
            "summary": s,
            "pdf_comparison": pdf,
            "pass_wall_s": [r.wall for r in runs],
            "files": [asdict(f) for f in best.files],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


def _empty_comparison() -> dict[str, Any]:
    blank = {"files": 0, "pages": 0, "seconds": 0.0, "chars": 0, "errors": 0, "pages_per_s": 0}
    return {
        "lantern": {"engine": "Lantern PdfParser (pypdfium2)", **blank},
        "pdfminer": {"engine": "pdfminer.six (skipped)", **blank},
        "speedup": None,
    }


if __name__ == "__main__":
    sys.exit(main())
