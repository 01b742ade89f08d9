"""``lantern ingest``: queue files, run the workers, show progress, summarise."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app import storable
from app.cli.common import console, short
from app.container import Container
from app.db.models import JobStatus
from app.errors import UnstorableText
from app.services.actor import Actor
from app.services.documents import AddResult
from app.services.library import Upload

SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Outcome:
    name: str
    result: AddResult
    status: str = ""
    error: str | None = None


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Files under ``paths`` with the name they get in the collection: the path relative
    to the folder given (so two README.md in different folders stay distinct)."""
    for root in paths:
        if root.is_file():
            yield root, root.name
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or p.name in SKIP_NAMES:
                    continue
                if p.is_file():
                    yield p, rel.as_posix()
        else:
            raise FileNotFoundError(f"no such file or folder: {root}")


def queue_files(c: Container, collection_id: str, files: list[tuple[Path, str]]) -> list[Outcome]:
    out: list[Outcome] = []
    for path, name in files:
        upload = Upload.from_path(path, name=name, max_bytes=c.library.max_file_bytes)
        try:
            ((kept, result),) = c.library.upload(Actor.cli(), collection_id, [upload])
        except UnstorableText as e:  # a file name that is not UTF-8: skip it, say so
            reason = f"{e}; rename the file"
            out.append(Outcome(storable.repaired(name), AddResult("", None, "rejected", reason)))
            continue
        out.append(Outcome(kept, result))
    return out


#: How long `lantern ingest` waits on a remote queue before it says no worker runs.
IDLE_HINT_S = 15.0


def wait_for_jobs(c: Container, job_ids: list[str], *, show_progress: bool = True) -> None:
    """Block until every job has finished, with a progress bar and ETA."""
    if not job_ids:
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[current]}"),
    )
    hint_at = time.monotonic() + IDLE_HINT_S if c.ingestion.remote else None
    with Progress(*columns, console=console, disable=not show_progress, transient=False) as bar:
        task = bar.add_task("Ingesting", total=len(job_ids), current="")
        while True:
            jobs = c.documents.jobs(job_ids)
            done = sum(1 for j in jobs if j.status not in JobStatus.UNFINISHED)
            running = [j for j in jobs if j.status == JobStatus.RUNNING]
            if hint_at is not None and (done or running):
                hint_at = None  # a worker is at it
            elif hint_at is not None and time.monotonic() > hint_at:
                hint_at = None
                bar.console.print(
                    f"[yellow]no worker has taken a job in {IDLE_HINT_S:.0f} s: jobs run in "
                    "`lantern worker` processes (LANTERN_JOBS__KIND="
                    f"{c.settings.jobs.kind}); start one with the same settings, or Ctrl+C "
                    "(the jobs stay queued)[/]"
                )
            partial = sum(j.progress for j in running)
            current = ", ".join(f"{short(j.document.name, 40)} ({j.stage})" for j in running[:2])
            bar.update(task, completed=min(done + partial, len(job_ids)), current=current)
            if done == len(jobs):
                bar.update(task, completed=len(job_ids), current="")
                return
            time.sleep(0.25)


def deciding_jobs(c: Container, outcomes: list[Outcome]) -> dict[str, str]:
    """For each file of the batch (by name), the job whose end decides its outcome: the
    one it queued or, for an unchanged file, its document's latest job (which may still
    be running, e.g. resumed from an interrupted run)."""
    out = {o.name: o.result.job_id for o in outcomes if o.result.job_id}
    unchanged = [o for o in outcomes if o.result.outcome == "duplicate"]
    latest = c.documents.latest_jobs([o.result.document_id for o in unchanged])
    for o in unchanged:
        job = latest.get(o.result.document_id)
        if job is not None:
            out[o.name] = job.id
    return out


def summarise(c: Container, outcomes: list[Outcome], resumed: list[str]) -> int:
    """Print what happened to every file; returns how many failed.

    An unchanged file counts by the state of its document: failed if that failed (in
    this run or an earlier one), ready if a job of this run finished it (an
    interrupted one, resumed), unchanged only if it was ready before. Interrupted jobs
    of other files that this run finished are reported on their own line."""
    deciding = deciding_jobs(c, outcomes)
    jobs = {j.id: j for j in c.documents.jobs(list(dict.fromkeys([*deciding.values(), *resumed])))}
    was_resumed = set(resumed)
    ready = failed = unchanged = 0
    failures = Table(title="Failed", show_lines=False, title_justify="left")
    failures.add_column("file")
    failures.add_column("reason", overflow="fold")
    for o in outcomes:
        job = jobs.get(deciding.get(o.name, ""))
        ok = job is not None and job.status == JobStatus.SUCCEEDED
        if o.result.outcome == "duplicate" and (job is None or (ok and job.id not in was_resumed)):
            unchanged += 1
            continue
        if ok:
            ready += 1
            continue
        failed += 1
        if job is None:
            reason = o.result.reason or "unknown error"
        elif job.status in JobStatus.UNFINISHED:
            reason = f"not finished ({job.status})"
        else:
            reason = job.error or f"ingestion {job.status}"
        failures.add_row(o.name, reason)
    parts = [f"[green]{ready} ready[/]", f"[red]{failed} failed[/]"]
    if unchanged:
        parts.append(f"{unchanged} unchanged (already ingested)")
    decided = set(deciding.values())
    others = [j for jid in resumed if jid not in decided and (j := jobs.get(jid))]
    if others:
        finished = sum(1 for j in others if j.status == JobStatus.SUCCEEDED)
        parts.append(f"{finished}/{len(others)} interrupted jobs of other files resumed")
        for j in others:
            if j.status != JobStatus.SUCCEEDED:
                failed += 1
                failures.add_row(j.document.name, j.error or f"ingestion {j.status}")
    console.print("Summary: " + ", ".join(parts))
    if failed:
        console.print(failures)
    return failed
