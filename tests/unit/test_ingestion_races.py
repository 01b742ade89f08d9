"""A document deleted or superseded while its ingestion job runs: the job ends as
cancelled, quietly (no traceback, no retry) and leaves nothing behind.

Each race is forced deterministically at one of three points of the job: between
two stages, just before it publishes, and inside the publishing transaction, after
its reads and before its first write (where a stale read used to end in
``StaleDataError``). On PostgreSQL the interfering writer may block on the job's
row locks; it then runs in a thread and finishes after the job commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from app.db.models import Chunk, Document, DocumentStatus, IngestionJob, JobStatus, Page
from tests.fixtures import docs
from tests.unit.ingest_helpers import add_files, doc, job_of, run_jobs

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")

NOTE = docs.make_markdown("# Parking\n\nVisitors park in bay C behind the warehouse.")


class Race:
    """Runs ``interfere`` once, at ``point`` of the job running in this thread."""

    def __init__(self, container: Any, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
        self.c = container
        self.point = point
        self.interfere: Callable[[], None] = lambda: None
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self._fired = False
        self._owner = threading.get_ident()
        self._publishing = False
        store = container.job_store
        set_stage, mark_ready = store.set_stage, store.mark_ready

        def hooked_set_stage(job_id: str, stage: str, progress: float) -> None:
            if point == "between stages" and stage == "embed":
                self.fire()
            set_stage(job_id, stage, progress)

        def hooked_mark_ready(spec: Any, **kw: Any) -> list[str]:
            if threading.get_ident() != self._owner:  # the interfering writer's own job
                return mark_ready(spec, **kw)
            if point == "before publishing":
                self.fire()
            self._publishing = True
            try:
                return mark_ready(spec, **kw)
            finally:
                self._publishing = False

        monkeypatch.setattr(store, "set_stage", hooked_set_stage)
        monkeypatch.setattr(store, "mark_ready", hooked_mark_ready)
        event.listen(container.engine, "before_cursor_execute", self._before_statement)

    def _before_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        first_write = statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}
        if (
            self.point == "inside publishing"
            and self._publishing
            and threading.get_ident() == self._owner
            and first_write
        ):
            self.fire()

    def fire(self) -> None:
        if self._fired:
            return
        self._fired = True

        def target() -> None:
            try:
                self.interfere()
            except BaseException as e:
                self.errors.append(e)

        # Another connection, in another thread: inside the publishing transaction on
        # PostgreSQL it waits for the job's locks, so give it a moment, then go on.
        self.thread = threading.Thread(target=target)
        self.thread.start()
        postgres = self.c.engine.dialect.name == "postgresql"
        self.thread.join(timeout=1.5 if postgres and self.point == "inside publishing" else 120)

    def finish(self) -> None:
        event.remove(self.c.engine, "before_cursor_execute", self._before_statement)
        if self.thread is not None:
            self.thread.join(timeout=120)
            assert not self.thread.is_alive(), "the interfering writer never finished"
        assert self._fired, f"the race at {self.point!r} was never triggered"
        if self.errors:
            raise self.errors[0]


POINTS = ["between stages", "before publishing", "inside publishing"]


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog
    records = caplog.get_records("setup") + caplog.get_records("call")
    loud = [r for r in records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [f"{r.name}: {r.getMessage()}" for r in loud]


def rows(container: Any, model: Any) -> int:
    with container.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def unfinished_jobs(container: Any) -> list[Any]:
    with container.sessions() as s:
        return list(
            s.scalars(select(IngestionJob).where(IngestionJob.status.in_(JobStatus.UNFINISHED)))
        )


@pytest.mark.parametrize("point", POINTS)
def test_document_deleted_mid_job_leaves_nothing(
    container: Any, monkeypatch: pytest.MonkeyPatch, quiet: Any, point: str
) -> None:
    r = add_files(container, {"parking.md": NOTE})["parking.md"]
    race = Race(container, monkeypatch, point)
    race.interfere = lambda: container.documents.delete(
        r.document_id, vectors=container.vectors, lexical=container.lexical
    )
    assert run_jobs(container) == 1
    race.finish()

    assert doc(container, r.document_id) is None
    for model in (Document, IngestionJob, Chunk, Page):
        assert rows(container, model) == 0, model.__name__
    assert container.vectors.document_ids() == set()
    assert container.lexical.document_ids() == set()
    assert container.search.search("where do visitors park", k=3) == []
    assert list(container.blobs) == []
    # Not retried: nothing is queued again, and a second pass finds no work.
    assert run_jobs(container) == 0


@pytest.mark.parametrize("point", POINTS)
def test_document_superseded_mid_job_leaves_only_the_new_version(
    container: Any, monkeypatch: pytest.MonkeyPatch, quiet: Any, point: str
) -> None:
    v1 = add_files(container, {"parking.md": NOTE})["parking.md"]
    old_job = container.job_store.claim_next()
    assert old_job == v1.job_id
    race = Race(container, monkeypatch, point)
    new: dict[str, Any] = {}

    def reindex_and_finish_it() -> None:
        # "Reindex" makes a new version; it is processed and published first.
        new["r"] = container.documents.reprocess(v1.document_id)
        assert run_jobs(container) == 1

    race.interfere = reindex_and_finish_it
    container.runner.run(old_job)
    race.finish()

    v2 = new["r"]
    with container.sessions() as s:
        left = [(d.id, d.version, d.status) for d in s.scalars(select(Document))]
        chunk_docs = set(s.scalars(select(Chunk.document_id)))
        page_docs = set(s.scalars(select(Page.document_id)))
    assert left == [(v2.document_id, 2, DocumentStatus.READY)]
    assert chunk_docs == page_docs == {v2.document_id}
    assert container.vectors.document_ids() == {v2.document_id}
    assert container.lexical.document_ids() == {v2.document_id}
    job = job_of(container, v2.document_id)
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)
    assert job_of(container, v1.document_id) is None  # went with its document
    assert unfinished_jobs(container) == []
    [hit] = container.search.search("where do visitors park", k=3)
    assert hit.document_id == v2.document_id
    assert run_jobs(container) == 0


def test_a_job_requeued_elsewhere_cannot_publish(container: Any, quiet: Any) -> None:
    """A worker whose lease was taken over (its job requeued and claimed again) must
    not publish over the new attempt: it stops as cancelled."""
    r = add_files(container, {"parking.md": NOTE})["parking.md"]
    job_id = container.job_store.claim_next()
    stale = container.job_store.load(job_id)
    container.job_store.recover(exclusive=True)  # as if this worker had died
    assert container.job_store.claim_next() == job_id  # attempt 2 starts elsewhere
    from ingestion.jobs import JobCancelled

    with pytest.raises(JobCancelled):
        container.job_store.mark_ready(stale, timings={})
    assert container.job_store.mark_failed(stale, error="x", retry=True) is False
    job = job_of(container, r.document_id)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)
    container.runner.run(job_id)
    assert doc(container, r.document_id).status == DocumentStatus.READY
