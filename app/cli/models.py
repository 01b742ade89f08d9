"""``lantern models``: the registry of fine-tuned model versions."""

from __future__ import annotations

import typer

models_app = typer.Typer(
    help="Model versions: list, promote, roll back, retire, compare.", no_args_is_help=True
)
