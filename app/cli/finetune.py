"""``lantern finetune``: build a dataset, train a LoRA adapter, evaluate it, export it.

Each command is one step of the model lifecycle (see the README's "Model
lifecycle" section); its output folder is the next step's input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from app.cli.common import console, err_console, human_size, open_container
from app.container import Container
from app.errors import LanternError
from app.services.actor import Actor

finetune_app = typer.Typer(
    help="Fine-tune the answer model on the company's documents and feedback.",
    no_args_is_help=True,
)

#: Whoever runs the command line on the server acts as an admin.
CLI = Actor.cli()

StageProgress = Callable[[str, int, int], None]


@contextmanager
def _progress(first: str, *, quiet: bool) -> Iterator[StageProgress]:
    """A progress bar on stderr (none when ``quiet``), fed ``(stage, done, total)``."""
    with Progress(console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task(first, total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield progress


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
    with open_container() as c, _progress("documents", quiet=as_json) as progress:
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


@finetune_app.command("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="A training run folder (lantern finetune train).")],
    gold: Annotated[
        list[Path],
        typer.Option(
            "--gold",
            help="Gold QA file (JSONL, as `lantern eval qa`); repeatable. "
            "Default: the bundled samples' sets, when the sample documents are loaded.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    dataset: Annotated[
        Path | None,
        typer.Option(help="Dataset whose validation split to use (default: the run's)."),
    ] = None,
    quant: Annotated[
        str, typer.Option(help="GGUF quantisation both models run at on llama.cpp.")
    ] = "f16",
    tolerance: Annotated[
        float | None,
        typer.Option(
            help="Largest drop on a gold metric that still passes "
            "(default LANTERN_FINETUNE__GATE_TOLERANCE)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the gate report as JSON.")] = False,
) -> None:
    """Base vs candidate through the real answer pipeline, on the gold sets and the
    dataset's validation split; the gate's verdict and reasons go to RUN/eval.json."""
    from app.services.eval_models import evaluation_models

    errors: tuple[type[Exception], ...] = (LanternError, *_lifecycle_errors())
    with open_container() as c, _progress("evaluating", quiet=as_json) as progress:

        def say(message: str) -> None:
            if not as_json:
                err_console.print(message)

        sets = _gold_sets(c, gold)
        data = dataset or _run_dataset(run)
        default_tolerance = c.settings.finetune.gate_tolerance
        try:
            with evaluation_models(
                c.settings, run, served=lambda: c.chat_model, quant=quant, say=say
            ) as (base, candidate):
                report = c.model_eval.gate(
                    CLI,
                    run,
                    base=base,
                    candidate=candidate,
                    gold=sets,
                    dataset=data,
                    tolerance=default_tolerance if tolerance is None else tolerance,
                    progress=progress,
                )
        except errors as e:
            err_console.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    table = Table("set", "metric", "base", "candidate")
    for name in report.candidate:
        for metric, value in report.candidate[name].items():
            table.add_row(name, metric, str(report.base.get(name, {}).get(metric, "-")), str(value))
    console.print(table)
    verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
    console.print(f"gate {verdict}:")
    for reason in report.reasons:
        console.print(f"  - {reason}")


def _gold_sets(c: Container, given: list[Path]) -> dict[str, Path]:
    """The gold QA files by name: those given, else the samples' when their documents are in."""
    if given:
        missing = [p for p in given if not p.is_file()]
        if missing:
            err_console.print(f"[red]no gold file {missing[0]}[/]")
            raise typer.Exit(2)
        return {p.stem: p for p in given}
    from app.samples import gold_sets, sample_files

    names = {p.name for p in sample_files()}
    loaded = {d.name for d in c.documents.list_documents()}
    if not names & loaded:
        err_console.print(
            "no --gold given and the sample documents are not loaded: only the validation "
            "split is evaluated"
        )
        return {}
    return gold_sets()


def _run_dataset(run: Path) -> Path | None:
    try:
        record = json.loads((run / "run.json").read_text("utf-8"))
        path = Path(record["dataset"]["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if (path / "manifest.json").is_file() else None


def _lifecycle_errors() -> tuple[type[Exception], ...]:
    """The fine-tuning libraries' own errors, shown as one line like Lantern's."""
    from llm.errors import LLMError
    from llm.finetune.errors import FinetuneError

    return (LLMError, FinetuneError)


@finetune_app.command("train")
def train_command(
    dataset: Annotated[
        Path, typer.Argument(help="Dataset folder (from `lantern finetune dataset`).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Run folder: adapter/, checkpoints/, run.json.")
    ],
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Base model: hub id, model directory or .gguf file (default: "
            "LANTERN_FINETUNE__BASE_MODEL, else the bundled SmolLM2-135M-Instruct).",
        ),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop after N optimiser steps.")
    ] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training split.")] = 1.0,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 2e-4,
    batch_size: Annotated[int, typer.Option(help="Examples per step and device.")] = 4,
    max_length: Annotated[
        int, typer.Option(help="Longer examples (prompt + reply, in tokens) are skipped.")
    ] = 1024,
    target: Annotated[
        str, typer.Option(help="LoRA target modules, comma-separated, or all-linear.")
    ] = "q_proj,v_proj",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same run).")] = 42,
    save_steps: Annotated[int, typer.Option(help="Save a checkpoint every N steps.")] = 50,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (default: cuda when a GPU is visible).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print run.json, nothing else.")] = False,
) -> None:
    """Train a LoRA adapter (QLoRA on a CUDA GPU) on DATASET's train split; rerun to resume."""
    from app.settings import get_settings
    from llm.finetune.config import Hyperparameters, parse_targets
    from llm.finetune.errors import FinetuneError
    from llm.finetune.train import last_checkpoint, train

    try:
        hp = Hyperparameters(
            target_modules=parse_targets(target),
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            max_steps=max_steps,
            max_length=max_length,
            save_steps=save_steps,
            seed=seed,
        )
        result = train(
            dataset,
            out,
            base=base or get_settings().finetune.base_model,
            hp=hp,
            device=device,
            progress=not as_json,
            console=err_console,
            notify=None if as_json else console.print,
        )
    except FinetuneError as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e
    except KeyboardInterrupt as e:
        saved = last_checkpoint(out)
        where = f"from {saved.name}" if saved else "from the start (no checkpoint yet)"
        err_console.print(f"[yellow]interrupted[/]: run the same command to resume {where}")
        raise typer.Exit(130) from e
    r = result.record
    if as_json:
        print(json.dumps(r, ensure_ascii=False, indent=2))
        return
    loss = r["loss"]
    console.print(
        f"trained {r['steps']} steps ({r['method']} on {r['device']}): loss "
        f"{loss['first']:.4f} -> {loss['last']:.4f}, {r['train_tokens']} tokens, "
        f"{r['tokens_per_s']:.0f} tokens/s, peak memory {r['peak_memory_mb']:.0f} MB, "
        f"{r['wall_s']:.0f} s"
    )
    console.print(f"adapter: {result.adapter_dir}\nrecord:  {out / 'run.json'}")


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
