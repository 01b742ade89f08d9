"""``lantern finetune``: build a dataset, train a LoRA adapter, evaluate it, export it.

Each command is one step of the model lifecycle (see the README's "Model
lifecycle" section); its output folder is the next step's input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from app.cli.common import console, err_console, open_container
from app.errors import LanternError
from app.services.actor import Actor

finetune_app = typer.Typer(
    help="Fine-tune the answer model on the company's documents and feedback.",
    no_args_is_help=True,
)

#: Whoever runs the command line on the server acts as an admin.
CLI = Actor.cli()


@finetune_app.command("dataset")
def dataset(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the dataset to.")],
    collection: Annotated[
        list[str],
        typer.Option("--collection", "-c", help="Collection to draw on (repeatable; default all)."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    per_document: Annotated[int, typer.Option(help="Questions generated per document.", min=0)] = 4,
    refusal_every: Annotated[
        int, typer.Option(help="One refusal example per this many grounded ones (0: none).", min=0)
    ] = 3,
    questions: Annotated[
        str,
        typer.Option(
            help="Who writes the questions: auto (the configured model if generative), "
            "llm or template."
        ),
    ] = "auto",
    validation_share: Annotated[
        float, typer.Option(help="Share of examples (whole documents) kept for validation.")
    ] = 0.2,
    context_tokens: Annotated[
        int | None,
        typer.Option(help="Token budget for each prompt's sources (default: the answer's)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and the split.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Build a training set: rated answers (thumbs-up, and thumbs-down with a
    "Correction: ..." comment), cited questions generated from the documents with
    distractor sources, and refusals, all in the answer prompt, split by document."""
    from app.services.finetune_data import DatasetOptions

    if questions not in ("auto", "llm", "template"):
        err_console.print("[red]--questions must be auto, llm or template[/]")
        raise typer.Exit(2)
    opts = DatasetOptions(
        questions_per_document=per_document,
        refusal_every=refusal_every,
        validation_share=validation_share,
        seed=seed,
        questions=questions,
        context_tokens=context_tokens,
    )
    with (
        open_container() as c,
        Progress(console=err_console, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("documents", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        try:
            info = c.training_data.build(
                CLI, out, collection_names=collection, options=opts, progress=progress
            )
        except LanternError as e:
            err_console.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
    m = info.manifest
    if as_json:
        print(json.dumps(m, indent=2, ensure_ascii=False))
        return
    table = Table("source", "train", "validation")
    for source, n in m["counts"].items():
        table.add_row(source, str(n["train"]), str(n["validation"]))
    console.print(table)
    names = ", ".join(c["name"] for c in m["collections"]) or "(none)"
    console.print(f"dataset [bold]{m['version']}[/] in {out} (collections: {names})")
    skipped = {k: v for k, v in m["excluded"].items() if v}
    if skipped:
        console.print(
            "left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items())
        )
