"""The CPU side of ingestion: bytes -> parsed pages -> chunks -> vectors.

Pure with respect to storage: it reads nothing and writes nothing, so the job
runner decides when results become durable and visible. Chunks and their vectors
come out a batch at a time (``batches``), so the job runner can store each batch
and let it go: memory does not grow with the document's chunk count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ingestion.chunking import ChunkDraft, Chunker
from ingestion.detect import detect_type
from ingestion.errors import EmptyDocument, file_too_large
from ingestion.ocr import watching
from ingestion.parsers.base import ParsedDocument
from ingestion.parsers.registry import ParserRegistry
from retrieval.embedders.base import Embedder, Matrix

log = logging.getLogger(__name__)

#: Share of a job's progress bar each stage fills (embedding dominates on CPU).
STAGE_SPAN: dict[str, tuple[float, float]] = {
    "parse": (0.0, 0.10),
    "chunk": (0.10, 0.15),
    "embed": (0.15, 0.92),
    "index": (0.92, 1.0),
}

#: The most of the bar OCR takes (a document whose every page is a scan).
OCR_SPAN = 0.8

ProgressFn = Callable[[str, float], None]
"""``progress(stage, overall_fraction)``; may raise to cancel the job."""


@dataclass
class ParsedUpload:
    """An upload parsed and checked to hold text; ``timings`` gains a key per stage."""

    filename: str
    mime: str
    parsed: ParsedDocument
    timings: dict[str, float] = field(default_factory=dict)
    #: Where the stages after parsing start on the job's progress bar: the parse
    #: stage's end, or later when OCR took its share.
    progress_start: float = STAGE_SPAN["parse"][1]

    def overall(self, fraction: float) -> float:
        """A position on the usual bar after parsing (``STAGE_SPAN``) moved into what is
        left after ``progress_start``."""
        end = STAGE_SPAN["parse"][1]
        return self.progress_start + (1 - self.progress_start) * (fraction - end) / (1 - end)


@dataclass(frozen=True)
class EmbeddedBatch:
    """Consecutive chunks of a document and one vector per chunk, in order."""

    chunks: list[ChunkDraft]
    vectors: Matrix


@dataclass
class PreparedDocument:
    mime: str
    parsed: ParsedDocument
    chunks: list[ChunkDraft]
    vectors: Matrix
    timings: dict[str, float] = field(default_factory=dict)


class IngestionPipeline:
    def __init__(
        self,
        parsers: ParserRegistry,
        chunker: Chunker,
        embedder: Embedder,
        *,
        max_bytes: int,
    ) -> None:
        self.parsers = parsers
        self.chunker = chunker
        self.embedder = embedder
        self.max_bytes = max_bytes

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise file_too_large(size, self.max_bytes)

    def parse(self, data: bytes, *, filename: str, progress: ProgressFn) -> ParsedUpload:
        """Detect and parse; ``EmptyDocument`` when no text comes out."""
        self.check_size(len(data))
        lo, hi = STAGE_SPAN["parse"]
        progress("parse", lo)
        t = time.perf_counter()
        detected = detect_type(data, filename)
        rest = hi  # where the stages after parsing start on the bar

        def on_ocr(done: int, total: int, pages: int) -> None:
            # OCR takes seconds a page, far longer than the rest of the job: it gets
            # the share of the bar its pages have of the document, up to OCR_SPAN.
            nonlocal rest
            rest = hi + OCR_SPAN * total / max(pages, total, 1)
            progress("ocr", lo + (rest - lo) * done / total)

        with watching(on_ocr) as ocr:
            parsed = self.parsers.get(detected.mime).parse(data, filename=filename)
        if not any(p.text.strip() for p in parsed.pages):
            raise EmptyDocument(f"no text could be extracted from {filename}")
        timings = {"parse": time.perf_counter() - t - ocr.seconds}
        if ocr.images:
            timings["ocr"] = ocr.seconds
        return ParsedUpload(filename, detected.mime, parsed, timings, progress_start=rest)

    def batches(self, upload: ParsedUpload, *, progress: ProgressFn) -> Iterator[EmbeddedBatch]:
        """Chunk and embed a batch of chunks at a time, adding up the "chunk" and
        "embed" timings; ``EmptyDocument`` when the document yields no chunk."""
        parsed, timings = upload.parsed, upload.timings
        timings["chunk"] = timings["embed"] = 0.0
        # Progress is the share of the document's text chunked and embedded so far.
        page_starts = [0]
        for page in parsed.pages:
            page_starts.append(page_starts[-1] + len(page.text))
        total = max(page_starts[-1], 1)
        lo, hi = STAGE_SPAN["embed"]
        lo, hi = upload.overall(lo), upload.overall(hi)
        progress("chunk", upload.overall(STAGE_SPAN["chunk"][0]))
        done = 0.0
        count = 0
        chunks = self.chunker.batches(parsed)
        while True:
            t = time.perf_counter()
            batch = next(chunks, None)
            timings["chunk"] += time.perf_counter() - t
            if batch is None:
                break
            last = batch[-1]
            after = (page_starts[last.page - 1] + last.char_end) / total
            before = done

            def report(n: int, of: int, before: float = before, after: float = after) -> None:
                progress("embed", lo + (hi - lo) * (before + (after - before) * n / of))

            t = time.perf_counter()
            texts = [c.embedding_text(parsed.title) for c in batch]
            vectors = self.embedder.embed_documents(texts, progress=report)
            timings["embed"] += time.perf_counter() - t
            done = after
            count += len(batch)
            yield EmbeddedBatch(batch, vectors)
        if not count:
            raise EmptyDocument(f"{upload.filename} contains no indexable text")

    def prepare(self, data: bytes, *, filename: str, progress: ProgressFn) -> PreparedDocument:
        """The whole document at once: parse, then every batch (for small inputs and tools)."""
        upload = self.parse(data, filename=filename, progress=progress)
        chunks: list[ChunkDraft] = []
        vectors: list[Matrix] = []
        for batch in self.batches(upload, progress=progress):
            chunks.extend(batch.chunks)
            vectors.append(batch.vectors)
        return PreparedDocument(
            upload.mime, upload.parsed, chunks, np.concatenate(vectors), upload.timings
        )
