"""``lantern finetune``: build a dataset, train a LoRA adapter, evaluate it, export it.

Each command is one step of the model lifecycle (see the README's "Model
lifecycle" section); its output folder is the next step's input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, err_console

finetune_app = typer.Typer(
    help="Fine-tune the answer model on the company's documents and feedback.",
    no_args_is_help=True,
)


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
