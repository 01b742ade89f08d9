"""Running one ingestion job: prepare, persist, index, publish, clean up on failure.

Storage of jobs and documents is behind ``JobStore`` (implemented by ``app`` on
SQLAlchemy), so this module knows no database. The order of writes makes a
crash at any point recoverable: pages, then chunks and their vectors a batch at
a time, are saved while the document is still ``processing`` (invisible); the
indexes are flushed, and only then one transaction marks the document ready and
removes the version it replaces. So a huge document is never held in memory as
a whole list of chunks and vectors, and still becomes searchable all at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingestion.blobstore import BlobStore
from ingestion.chunking import ChunkDraft, chunk_id
from ingestion.errors import IngestionError
from ingestion.parsers.base import Attachment, ParsedDocument
from ingestion.pipeline import STAGE_SPAN, IngestionPipeline
from retrieval.lexical.base import LexicalIndex, LexicalRecord
from retrieval.vectorstores.base import VectorRecord, VectorStore

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """The document was deleted (or the job cancelled) while the job ran."""


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    document_id: str
    collection_id: str
    filename: str
    sha256: str
    attempt: int
    max_attempts: int


class JobStore(Protocol):
    def load(self, job_id: str) -> JobSpec: ...

    def set_stage(self, job_id: str, stage: str, progress: float) -> None:
        """Record stage and progress (and a heartbeat); raise JobCancelled if cancelled."""

    def heartbeat(self, spec: JobSpec) -> None:
        """Renew the job's lease: its worker is alive, even on a stage that reports no
        progress for longer than the lease (one huge page, a slow model)."""

    def save_pages(self, spec: JobSpec, *, mime: str, parsed: ParsedDocument) -> None:
        """Replace the document's pages (and drop chunks of an earlier attempt); the
        document stays invisible to search. Raise JobCancelled if it was deleted."""

    def add_chunks(self, spec: JobSpec, *, chunks: list[ChunkDraft], chunk_ids: list[str]) -> None:
        """Store one batch of chunks, still invisible. Raise JobCancelled if deleted."""

    def mark_ready(
        self,
        spec: JobSpec,
        *,
        timings: dict[str, float],
        attachments: Sequence[Attachment] = (),
    ) -> list[str]:
        """Publish the document atomically; return ids of the documents that went with it
        (replaced versions and their attachments, now deleted). In the same transaction
        each of ``attachments`` (an e-mail's) is added as a document linked to this one,
        with a job of its own. Raise JobCancelled when the job no longer runs, or a newer
        version of the file was published first (this version is then deleted)."""

    def mark_failed(self, spec: JobSpec, *, error: str, retry: bool) -> bool:
        """Fail the attempt (requeue it when ``retry``), dropping its chunks and pages.
        False when there was nothing to fail: the job no longer runs (its document was
        deleted or replaced meanwhile)."""


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        pipeline: IngestionPipeline,
        vectors: VectorStore,
        blobs: BlobStore,
        lexical: LexicalIndex | None = None,
        *,
        heartbeat_seconds: float = 0.0,
    ) -> None:
        """``heartbeat_seconds``: how often a running job renews its lease (0: only
        when it reports progress)."""
        self.store = store
        self.heartbeat_seconds = heartbeat_seconds
        self.pipeline = pipeline
        self.vectors = vectors
        self.lexical = lexical
        self.blobs = blobs

    def run(self, job_id: str) -> None:
        try:
            spec = self.store.load(job_id)
        except JobCancelled:
            log.info("job %s vanished before it started (document deleted)", job_id)
            return
        started = time.perf_counter()
        beating = self._beat(spec)
        try:
            self._run(spec)
        except JobCancelled:
            log.info("job %s cancelled; removing its vectors", job_id)
            self._drop_vectors(spec.document_id)
        except IngestionError as e:
            self._drop_vectors(spec.document_id)
            if self.store.mark_failed(spec, error=str(e), retry=False):
                log.info("job %s failed: %s", job_id, e)
            else:
                log.info("job %s cancelled (its document was deleted or replaced)", job_id)
        except Exception as e:
            retry = spec.attempt < spec.max_attempts
            self._drop_vectors(spec.document_id)
            error = f"internal error: {type(e).__name__}: {e}"
            if self.store.mark_failed(spec, error=error, retry=retry):
                log.exception("job %s crashed (attempt %d, retry=%s)", job_id, spec.attempt, retry)
            else:
                # What broke was the document vanishing under the job: not a crash.
                log.info(
                    "job %s cancelled (its document was deleted or replaced): %s",
                    job_id,
                    type(e).__name__,
                )
        else:
            log.info("job %s done in %.2fs", job_id, time.perf_counter() - started)
        finally:
            beating.set()

    def _beat(self, spec: JobSpec) -> threading.Event:
        """Renew the job's lease every ``heartbeat_seconds`` until the returned event is set."""
        stop = threading.Event()
        if self.heartbeat_seconds <= 0:
            return stop

        def beat() -> None:
            while not stop.wait(self.heartbeat_seconds):
                try:
                    self.store.heartbeat(spec)
                except Exception as e:  # the next beat tries again; the job goes on
                    log.warning("job %s: could not renew its lease: %s", spec.job_id, e)

        threading.Thread(target=beat, name=f"job-lease-{spec.job_id[:8]}", daemon=True).start()
        return stop

    def _run(self, spec: JobSpec) -> None:
        def progress(stage: str, fraction: float) -> None:
            self.store.set_stage(spec.job_id, stage, fraction)

        upload = self.pipeline.parse(
            self.blobs.get(spec.sha256), filename=spec.filename, progress=progress
        )
        timings = upload.timings
        t = time.perf_counter()
        self.store.save_pages(spec, mime=upload.mime, parsed=upload.parsed)
        # A crashed earlier attempt may have left entries behind.
        self.vectors.delete_documents([spec.document_id])
        if self.lexical is not None:
            self.lexical.delete_documents([spec.document_id])
        index = time.perf_counter() - t
        title = upload.parsed.title
        for batch in self.pipeline.batches(upload, progress=progress):
            t = time.perf_counter()
            ids = [chunk_id(spec.document_id, c.ordinal, c.content_hash) for c in batch.chunks]
            self.store.add_chunks(spec, chunks=batch.chunks, chunk_ids=ids)
            self.vectors.upsert(
                [
                    VectorRecord(cid, spec.document_id, spec.collection_id, batch.vectors[i])
                    for i, cid in enumerate(ids)
                ]
            )
            if self.lexical is not None:
                self.lexical.upsert(
                    [
                        LexicalRecord(
                            cid, spec.document_id, spec.collection_id, c.embedding_text(title)
                        )
                        for c, cid in zip(batch.chunks, ids, strict=True)
                    ]
                )
            index += time.perf_counter() - t

        progress("index", upload.overall(STAGE_SPAN["index"][0]))
        t = time.perf_counter()
        self.vectors.flush()
        if self.lexical is not None:
            self.lexical.flush()
        timings["index"] = index + time.perf_counter() - t
        replaced = self.store.mark_ready(
            spec, timings=timings, attachments=upload.parsed.attachments
        )
        if replaced:
            self._drop_vectors(*replaced)

    def _drop_vectors(self, *document_ids: str) -> None:
        """Remove the documents from every index (vector and lexical)."""
        for index in (self.vectors, self.lexical):
            if index is None:
                continue
            try:
                if index.delete_documents(document_ids):
                    index.flush()
            except Exception:
                # Left for the start-up reconciliation, which removes orphan entries.
                log.exception("could not remove %s from %s", document_ids, type(index).__name__)
