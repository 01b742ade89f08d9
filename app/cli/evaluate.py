"""``lantern eval``: retrieval quality on BEIR folders."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from app.cli.common import console, err_console
from app.container import Container
from app.settings import get_settings

if TYPE_CHECKING:
    from app.services.qa_eval import QAResult

eval_app = typer.Typer(help="Measure retrieval and answer quality.", no_args_is_help=True)

MODES = ("dense", "bm25", "hybrid", "hybrid+rerank")


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[
        Path | None,
        typer.Option("--beir", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    ] = None,
    squad: Annotated[
        Path | None,
        typer.Option(
            "--squad",
            help="SQuAD-format JSON (SQuAD 1.1/2.0, CMRC 2018): each paragraph is a document, "
            "each answerable question's relevant document is its paragraph.",
        ),
    ] = None,
    mode: Annotated[
        list[str], typer.Option("--mode", help="dense|bm25|hybrid|hybrid+rerank (repeatable).")
    ] = ["hybrid"],  # noqa: B006 - typer reads the default, never mutates it
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where indexes and cached embeddings go (default: data dir/eval)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """nDCG@10, Recall@5/10/100, MRR@10 and p50/p95 query latency on a BEIR dataset or a
    SQuAD-format file."""
    from retrieval.evaluation.beir import DatasetError, load_beir
    from retrieval.evaluation.runner import evaluate_dataset
    from retrieval.evaluation.squad import load_squad, squad_as_beir

    bad = [m for m in mode if m not in MODES]
    if bad:
        err_console.print(f"[red]unknown mode {bad[0]!r}; choose from {', '.join(MODES)}[/]")
        raise typer.Exit(2)
    if (beir is None) == (squad is None):
        err_console.print("[red]give exactly one of --beir FOLDER or --squad FILE[/]")
        raise typer.Exit(2)
    if beir is not None and not (beir / "corpus.jsonl").exists():
        err_console.print(f"[red]{beir} is not a BEIR folder (no corpus.jsonl)[/]")
        raise typer.Exit(2)
    try:
        if beir is not None:
            data = load_beir(beir)
        else:
            squad_set = load_squad(squad or "")
            if squad_set.skipped:
                err_console.print(
                    f"[yellow]{len(squad_set.skipped)} questions skipped "
                    f"(first: {squad_set.skipped[0]})[/]"
                )
            data = squad_as_beir(squad_set)
    except DatasetError as e:
        err_console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    c = Container(get_settings())
    try:
        work = workdir or c.settings.data_dir / "eval" / (beir or squad or Path()).resolve().name
        reranker = None
        if "hybrid+rerank" in mode:
            from retrieval.rerankers.registry import create_reranker

            reranker = create_reranker(c.settings.reranker.kind, **c.settings.reranker.options())
        r = c.settings.retrieval
        reports = []
        with Progress(console=console, transient=True, disable=as_json) as bar:
            for m in mode:
                task = bar.add_task(f"{m}", total=None)

                def progress(stage: str, done: int, total: int, t: Any = task, m: str = m) -> None:
                    bar.update(t, description=f"{m}: {stage}", completed=done, total=total)

                report = evaluate_dataset(
                    data,
                    mode=m,  # type: ignore[arg-type]
                    embedder=c.embedder if m != "bm25" else None,
                    lexical_factory=c.open_lexical_index if m != "dense" else None,
                    workdir=work,
                    reranker=reranker,
                    weights=(r.dense_weight, r.lexical_weight),
                    rrf_k=r.rrf_k,
                    progress=progress,
                )
                reports.append(report)
    finally:
        c.close()
    if as_json:
        print(json.dumps([asdict(rep) for rep in reports], indent=2))
        return
    rows = [rep.as_row() for rep in reports]
    table = Table(title=f"{data.name} ({reports[0].embedding_model or 'no embedder'})")
    for col in rows[0]:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


@eval_app.command("qa")
def eval_qa(
    file: Annotated[
        Path | None, typer.Option("--file", help="Gold QA JSONL (default: the bundled set).")
    ] = None,
    docs: Annotated[
        Path | None,
        typer.Option(help="Documents the questions are about (default: the bundled samples)."),
    ] = None,
    squad: Annotated[
        Path | None,
        typer.Option(
            "--squad",
            help="SQuAD-format JSON instead (SQuAD 1.1/2.0, CMRC 2018): every paragraph is "
            "ingested as a document, every question asked; SQuAD 2.0's impossible questions "
            "are the unanswerable ones.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Ask a random sample of this many questions.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --limit sample.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Answer with the abstention gates off, then print the thresholds "
            "(LANTERN_ANSWER__ABSTAIN_BELOW, LANTERN_LLM__EXTRACTIVE__MIN_SUPPORT) that "
            "score best on this set, with the curves around them.",
        ),
    ] = False,
) -> None:
    """Answer recall, citation precision, abstention accuracy and latency on a QA set.
    The documents are ingested into a temporary data dir; your data is untouched."""
    import tempfile

    from app.cli.ingest import iter_files, queue_files, wait_for_jobs
    from app.samples import HERE, sample_files
    from app.services.qa_eval import evaluate_qa, load_items

    if squad is not None and (file is not None or docs is not None):
        err_console.print(
            "[red]--squad brings its own questions and documents: no --file/--docs[/]"
        )
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="lantern-qa-") as tmp:
        if squad is not None:
            items, files = _squad_set(squad, Path(tmp) / "paragraphs", limit=limit, seed=seed)
        else:
            items = load_items(file or HERE / "gold_qa.jsonl")
            if limit is not None:
                items = items[:limit]
            files = list(iter_files([docs])) if docs else [(p, p.name) for p in sample_files()]
        settings = get_settings()
        settings.data_dir = Path(tmp) / "data"
        settings.database.url = None
        if calibrate:
            settings.answer.abstain_below = -1.0
            settings.llm.extractive.min_support = 0.0
        c = Container(settings)
        try:
            c.migrate()
            col = c.collections.ensure("eval")
            c.ingestion.start()
            outcomes = queue_files(c, col.id, files)
            wait_for_jobs(
                c, [o.result.job_id for o in outcomes if o.result.job_id], show_progress=not as_json
            )
            names = {d.id: d.name for d in c.documents.list_documents()}
            report = evaluate_qa(items, c.answers, names, collection_ids=[col.id])
        finally:
            c.close()
    if calibrate:
        print_calibration(report.results, as_json=as_json)
        return
    if as_json:
        out = report.as_row() | {
            "results": [
                {
                    "question": r.item.question,
                    "answer": r.answer,
                    "recalled": r.recalled,
                    "abstained": r.abstained,
                    "citations": r.citations,
                    "correct_citations": r.correct_citations,
                    "unanswerable": r.item.unanswerable,
                    "refused_because": r.refused_because,
                }
                for r in report.results
            ]
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    table = Table(title="QA evaluation")
    for k in report.as_row():
        table.add_column(k, justify="right")
    table.add_row(*(str(v) for v in report.as_row().values()))
    console.print(table)
    for r in report.results:
        ok = r.recalled if not r.item.unanswerable else r.abstained
        mark = "[green]ok[/]" if ok else "[red]miss[/]"
        console.print(f"{mark} {r.item.question} -> {r.answer[:100]}")


def _squad_set(
    path: Path, folder: Path, *, limit: int | None, seed: int
) -> tuple[list[Any], list[tuple[Path, str]]]:
    """The questions of a SQuAD-format file, and its paragraphs written as files."""
    from app.services.qa_squad import paragraph_files, squad_items
    from retrieval.evaluation.beir import DatasetError
    from retrieval.evaluation.squad import load_squad

    try:
        data = load_squad(path)
    except DatasetError as e:
        err_console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    if data.skipped:
        err_console.print(
            f"[yellow]{len(data.skipped)} questions skipped (first: {data.skipped[0]})[/]"
        )
    names = paragraph_files(data, folder)
    items = squad_items(data, names, limit=limit, seed=seed)
    return items, [(folder / name, name) for name in names.values()]


def print_calibration(results: list[QAResult], *, as_json: bool) -> None:
    from app.services.qa_eval import calibrate

    best, by_support, by_dense = calibrate(results)
    if as_json:
        print(
            json.dumps(
                {
                    "best": asdict(best),
                    "by_support": [asdict(o) for o in by_support],
                    "by_dense": [asdict(o) for o in by_dense],
                },
                indent=2,
            )
        )
        return

    def fmt(v: float | None) -> str:
        return "off" if v is None else f"{v:.2f}"

    for title, rows in (
        (f"support floor, dense threshold at {fmt(best.abstain_below)}", by_support),
        (f"dense threshold, support floor at {fmt(best.min_support)}", by_dense),
    ):
        if len(rows) < 2:
            continue
        table = Table(title=title)
        for col in (
            "abstain below",
            "min support",
            "abstention acc",
            "answer recall",
            "abstained: unanswerable",
            "abstained: answerable",
        ):
            table.add_column(col, justify="right")
        for o in rows:
            table.add_row(
                fmt(o.abstain_below),
                fmt(o.min_support),
                f"{o.abstention_accuracy:.3f}",
                f"{o.answer_recall:.3f}",
                f"{o.abstained_unanswerable:.3f}",
                f"{o.abstained_answerable:.3f}",
                style="bold" if o == best else None,
            )
        console.print(table)
    console.print(
        f"best: abstention accuracy {best.abstention_accuracy:.3f}, answer recall "
        f"{best.answer_recall:.3f} with"
    )
    if best.abstain_below is not None:
        console.print(f"  LANTERN_ANSWER__ABSTAIN_BELOW={best.abstain_below}")
    else:
        console.print("  LANTERN_ANSWER__ABSTAIN_BELOW=-1  (the dense gate does not help here)")
    if best.min_support is not None:
        console.print(f"  LANTERN_LLM__EXTRACTIVE__MIN_SUPPORT={best.min_support}")
