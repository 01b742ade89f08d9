"""``lantern finetune``: build a dataset, train a LoRA adapter, evaluate it, export it.

Each command is one step of the model lifecycle (see the README's "Model
lifecycle" section); its output folder is the next step's input.
"""

from __future__ import annotations

import typer

finetune_app = typer.Typer(
    help="Fine-tune the answer model on the company's documents and feedback.",
    no_args_is_help=True,
)
