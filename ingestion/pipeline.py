"""The CPU side of ingestion: bytes -> parsed pages -> chunks -> vectors.

Pure with respect to storage: it reads nothing and writes nothing, so the job
runner decides when results become durable and visible.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingestion.chunking import ChunkDraft, Chunker
from ingestion.detect import detect_type
from ingestion.errors import EmptyDocument, file_too_large
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

ProgressFn = Callable[[str, float], None]
"""``progress(stage, overall_fraction)``; may raise to cancel the job."""


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

    def prepare(self, data: bytes, *, filename: str, progress: ProgressFn) -> PreparedDocument:
        timings: dict[str, float] = {}
        self.check_size(len(data))

        progress("parse", STAGE_SPAN["parse"][0])
        t = time.perf_counter()
        detected = detect_type(data, filename)
        parsed = self.parsers.get(detected.mime).parse(data, filename=filename)
        if not any(p.text.strip() for p in parsed.pages):
            raise EmptyDocument(f"no text could be extracted from {filename}")
        timings["parse"] = time.perf_counter() - t

        progress("chunk", STAGE_SPAN["chunk"][0])
        t = time.perf_counter()
        chunks = self.chunker.chunk(parsed)
        if not chunks:
            raise EmptyDocument(f"{filename} contains no indexable text")
        timings["chunk"] = time.perf_counter() - t

        lo, hi = STAGE_SPAN["embed"]
        progress("embed", lo)
        t = time.perf_counter()
        texts = [c.embedding_text(parsed.title) for c in chunks]
        vectors = self.embedder.embed_documents(
            texts, progress=lambda done, total: progress("embed", lo + (hi - lo) * done / total)
        )
        timings["embed"] = time.perf_counter() - t
        return PreparedDocument(detected.mime, parsed, chunks, vectors, timings)
