"""``lantern finetune``: build a dataset, train a LoRA adapter, evaluate it, export it.

Each command is one step of the model lifecycle (see the README's "Model
lifecycle" section); its output folder is the next step's input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, err_console, human_size

finetune_app = typer.Typer(
    help="Fine-tune the answer model on the company's documents and feedback.",
    no_args_is_help=True,
)


@finetune_app.command("export")
def export(
    run: Annotated[Path, typer.Argument(help="A training run folder (`lantern finetune train`).")],
    gguf: Annotated[
        bool,
        typer.Option("--gguf", help="Write a merged GGUF for the llamacpp backend."),
    ] = False,
    quant: Annotated[
        list[str],
        typer.Option("--quant", help="f16, Q8_0 or Q4_K_M (repeatable; quantised by llama.cpp)."),
    ] = ["f16"],  # noqa: B006 - typer reads the default, never mutates it
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json's files.")] = False,
) -> None:
    """Merge the run's LoRA adapter into its base model and write RUN/gguf/<run>-<quant>.gguf."""
    from llm.finetune.export import EXPORT_FILE, ExportError, ExportUnavailable, export_gguf

    if not gguf:
        err_console.print("[red]choose the export format: --gguf (a merged GGUF for llama.cpp)[/]")
        raise typer.Exit(2)

    def say(message: str) -> None:
        if not as_json:
            err_console.print(message)

    written = []
    try:
        for q in quant:
            written.append(export_gguf(run, q, progress=say))
    except ExportUnavailable as e:
        err_console.print(f"[yellow]{e}[/]")
        raise typer.Exit(3) from e
    except ExportError as e:
        err_console.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    record = json.loads((run / EXPORT_FILE).read_text(encoding="utf-8"))
    if as_json:
        console.print_json(json.dumps(record["files"]))
        return
    for path in written:
        console.print(f"{path}  {human_size(path.stat().st_size)}")
