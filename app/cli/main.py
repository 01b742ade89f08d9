"""The ``lantern`` command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.backends import backends
from app.cli.common import console, err_console, human_size, open_container, setup_logging, short
from app.cli.evaluate import eval_app
from app.cli.finetune import finetune_app
from app.cli.models import models_app
from app.cli.server import serve, serve_container, users_app, worker
from app.errors import LanternError
from app.services.actor import Actor
from ingestion.errors import IngestionError, JobQueueError
from retrieval.errors import RetrievalError

app = typer.Typer(
    help="Lantern: a self-hosted knowledge assistant. Documents in, cited answers out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
docs_app = typer.Typer(help="List and delete documents.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(users_app, name="users")
app.add_typer(finetune_app, name="finetune")
app.add_typer(models_app, name="models")
app.command()(serve)
app.command()(worker)
app.command()(backends)

#: Whoever runs the command line on the server acts as an admin.
CLI = Actor.cli()

CollectionOpt = Annotated[
    str | None, typer.Option("--collection", "-c", help="Collection name (default: all).")
]


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    setup_logging(verbose)


@db_app.command("upgrade")
def db_upgrade(
    indexes: Annotated[
        bool,
        typer.Option(
            "--indexes",
            help="Also open the vector and lexical indexes, creating them where missing (a "
            "one-shot step before several processes start over one Milvus server).",
        ),
    ] = False,
) -> None:
    """Apply database migrations (idempotent)."""
    from app.db.migrate import current_revision

    with open_container() as c:
        console.print(f"database at revision [bold]{current_revision(c.engine)}[/]")
        if indexes:
            c.lexical  # noqa: B018 - opens the vector store beside it
            console.print(
                f"indexes ready: {c.settings.vector_store.kind} vectors, "
                f"{c.settings.lexical_kind} lexical, embedding model {c.embedder.model_name}"
            )


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Collection to add to (created if missing).")
    ] = "default",
    workers: Annotated[int | None, typer.Option(help="Worker threads.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Ingest files and folders: parse, chunk, embed and index them, then summarise."""
    from app.cli.ingest import deciding_jobs, iter_files, queue_files, summarise, wait_for_jobs

    try:
        files = list(iter_files(paths))
    except FileNotFoundError as e:
        err_console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    with open_container() as c:
        col = c.library.create_collection(CLI, collection, exist_ok=True)
        # Before the workers start: they may finish a resumed job before it is counted.
        resumed = c.documents.unfinished_job_ids()
        c.ingestion.start(workers)
        if resumed:
            console.print(f"resuming {len(resumed)} unfinished job(s) from an earlier run")
        outcomes = queue_files(c, col.id, files)
        pending = list(dict.fromkeys([*resumed, *deciding_jobs(c, outcomes).values()]))
        wait_for_jobs(c, pending, show_progress=progress)
        failed = summarise(c, outcomes, resumed)
    raise typer.Exit(1 if failed else 0)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 5,
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the chunks that best match QUERY, with document, page and score."""
    with open_container() as c:
        ids = _collection_ids(c, collection)
        results = c.library.search(CLI, query, k=k, collection_ids=ids)
    if as_json:
        print(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2))
        return
    if not results:
        console.print("no results (is anything ingested? try `lantern docs list`)")
        return
    table = Table(show_lines=True)
    for col in ("#", "score", "document", "page", "section", "text"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(results, 1):
        table.add_row(
            str(i),
            f"{r.score:.3f}",
            r.document_name,
            str(r.page) if r.page is not None else "-",
            short(" > ".join(r.section_path), 40),
            short(r.text, 240),
        )
    console.print(table)


def _collection_ids(c: Any, collection: str | None) -> list[str] | None:
    if not collection:
        return None
    try:
        return [c.library.collection_by_name(CLI, collection).id]
    except LanternError as e:
        err_console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    collection: CollectionOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Answer QUESTION from the documents, streaming, with verified citations."""
    from app.cli.ask import print_answer_stream

    with open_container() as c:
        _collection_ids(c, collection)  # an unknown name is refused before anything runs
        print_answer_stream(c, question, collection=collection, history=[], as_json=as_json)


@app.command()
def chat(collection: CollectionOpt = None) -> None:
    """A multi-turn conversation in the terminal (empty line or Ctrl-D to quit)."""
    from app.cli.ask import print_answer_stream
    from llm.base import ChatMessage

    with open_container() as c:
        _collection_ids(c, collection)
        history: list[ChatMessage] = []
        while True:
            try:
                question = console.input("[bold green]you>[/] ").strip()
            except (EOFError, KeyboardInterrupt):
                break
            if not question:
                break
            console.print("[bold]lantern>[/] ", end="")
            answer = print_answer_stream(c, question, collection=collection, history=history)
            history += [
                ChatMessage("user", question),
                ChatMessage("assistant", answer.text),
            ]


@docs_app.command("list")
def docs_list(
    collection: CollectionOpt = None,
    status: Annotated[str | None, typer.Option(help="queued|processing|ready|failed")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List documents with status, pages, chunks and errors."""
    with open_container() as c:
        ids = _collection_ids(c, collection)
        names = {v.collection.id: v.collection.name for v in c.library.list_collections(CLI)}
        views = c.library.list_documents(CLI, ids[0] if ids else None, status=status)
        docs = [v.document for v in views]
    if as_json:
        rows = [
            {
                "id": d.id,
                "name": d.name,
                "collection": names.get(d.collection_id),
                "status": d.status,
                "version": d.version,
                "mime": d.mime,
                "size": d.size,
                "pages": d.page_count,
                "chunks": d.chunk_count,
                "error": d.error,
                "timings": d.timings,
            }
            for d in docs
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table()
    for col in ("id", "collection", "name", "v", "status", "pages", "chunks", "size", "error"):
        table.add_column(col, overflow="fold")
    colour = {"ready": "green", "failed": "red"}
    for d in docs:
        st = f"[{colour.get(d.status, 'yellow')}]{d.status}[/]"
        table.add_row(
            d.id[:8],
            names.get(d.collection_id, "?"),
            d.name,
            str(d.version),
            st,
            str(d.page_count),
            str(d.chunk_count),
            human_size(d.size),
            short(d.error or "", 80),
        )
    console.print(table)


@docs_app.command("delete")
def docs_delete(
    refs: Annotated[list[str], typer.Argument(help="Document ids (or 8+ char prefixes) or names.")],
    collection: CollectionOpt = None,
) -> None:
    """Delete documents: rows, chunks, vectors and stored file."""
    missing = 0
    with open_container() as c:
        ids = _collection_ids(c, collection)
        for ref in refs:
            docs = c.library.find_documents(CLI, ref, collection_id=ids[0] if ids else None)
            if not docs:
                err_console.print(f"[red]no document matches {ref!r}[/]")
                missing += 1
                continue
            for d in docs:
                c.library.delete_document(CLI, d.id)
                console.print(f"deleted {d.name} (v{d.version}, {d.id[:8]})")
    raise typer.Exit(1 if missing else 0)


@app.command()
def jobs(
    status: Annotated[
        str | None, typer.Option(help="queued|running|succeeded|failed|cancelled")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
) -> None:
    """Show recent ingestion jobs: stage, progress, attempts, per-stage seconds, errors."""
    with open_container() as c:
        rows = c.library.recent_jobs(CLI, status=status, limit=limit)
    table = Table()
    for col in ("job", "document", "status", "stage", "progress", "tries", "seconds", "error"):
        table.add_column(col, overflow="fold")
    for j in rows:
        secs = " ".join(f"{k}={v:.2f}" for k, v in (j.timings or {}).items())
        table.add_row(
            j.id[:8],
            j.document.name,
            j.status,
            j.stage,
            f"{j.progress:.0%}",
            str(j.attempts),
            secs,
            short(j.error or "", 80),
        )
    console.print(table)


@app.command()
def reindex() -> None:
    """Rebuild the vector index from the database with the configured embedding model."""
    from rich.progress import Progress

    from app.services.reindex import rebuild_index

    with open_container() as c:
        directory = c.vector_dir
        with Progress(console=console) as bar:
            task = bar.add_task(f"Re-embedding with {c.embedder.model_name}", total=None)
            n = rebuild_index(
                c.sessions,
                c.embedder,
                directory,
                c.open_vector_store,
                lexical_dir=c.lexical_dir,
                open_lexical=c.open_lexical_index,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    console.print(f"reindexed {n} chunks into {directory}")


@app.command()
def demo(
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API once the samples are in.")
    ] = True,
    host: Annotated[str | None, typer.Option(help="Address to serve on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to serve on.")] = None,
) -> None:
    """Quick start: set up the database, ingest the bundled sample documents, create the
    demo admin and serve the API."""
    from app.cli.ingest import queue_files, summarise, wait_for_jobs
    from app.samples import sample_files

    with open_container() as c:
        col = c.library.create_collection(
            CLI, "Samples", description="Documents bundled with Lantern", exist_ok=True
        )
        c.ingestion.start()
        outcomes = queue_files(c, col.id, [(p, p.name) for p in sample_files()])
        wait_for_jobs(c, [o.result.job_id for o in outcomes if o.result.job_id])
        summarise(c, outcomes, [])
        if c.embedder.is_fallback:
            err_console.print(
                f"[yellow]note: using the bundled fallback embedder {c.embedder.model_name}[/]"
            )
        for q in ("How many vacation days do new employees get?", "What is the password policy?"):
            hits = c.library.search(CLI, q, k=1, collection_ids=[col.id])
            if hits:
                h = hits[0]
                where = f"{h.document_name}" + (f", page {h.page}" if h.page else "")
                console.print(f"\n[bold]{q}[/]\n  [cyan]{where}[/]: {short(h.text, 300)}")
        s = c.settings.server
        c.settings.check_secrets()
        admin = s.admin_password.get_secret_value()
        created = c.identity.ensure_admin(CLI, s.admin_email, admin, name="Admin") is not None
        console.print(
            f"\nDemo admin: [bold]{s.admin_email}[/] / password from "
            "LANTERN_SERVER__ADMIN_PASSWORD (default: lantern-demo-admin, dev only)"
            + ("" if created else " (already existed)")
        )
        console.print('Try: lantern ask "What is the expense claim deadline?"')
        if serve_after:
            serve_container(c, host, port)


def main() -> None:
    try:
        app()
    except (LanternError, RetrievalError, IngestionError, JobQueueError) as e:
        err_console.print(f"[red]error:[/] {e}")
        raise SystemExit(2) from e
