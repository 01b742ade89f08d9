"""``lantern models``: the registry of fine-tuned model versions."""

from __future__ import annotations

import typer

models_app = typer.Typer(
    help="Model versions: list, promote, roll back, retire, compare.", no_args_is_help=True
)


# -- lantern models compare (serving: A/B metrics from the stored answers) ------------------
# Imports kept in this block so that it merges as one piece with the registry's commands.
from collections.abc import Callable  # noqa: E402
from typing import Annotated  # noqa: E402

from app.services.model_compare import VersionStats  # noqa: E402


@models_app.command("compare")
def models_compare(
    a: Annotated[str, typer.Argument(help="A version name, or `base` for the base model.")],
    b: Annotated[str, typer.Argument(help="The version to compare it with (or `base`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Two versions side by side from their stored answers: latency, errors, abstentions,
    thumbs, and whether their thumbs-up rates differ significantly."""
    import json

    from rich.table import Table

    from app.cli.common import console, open_container
    from app.services.actor import Actor

    with open_container() as c:
        result = c.model_compare.compare(Actor.cli(), a, b)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    table = Table("", a, b)
    for label, get in _COMPARE_ROWS:
        table.add_row(label, get(result.a), get(result.b))
    console.print(table)
    t = result.thumbs_up
    z = "n/a" if t.z is None else f"{t.z:.2f}"
    p = "n/a" if t.p_value is None else f"{t.p_value:.3g}"
    console.print(f"thumbs-up rate: z = {z}, p = {p}: {t.verdict}")


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


_COMPARE_ROWS: list[tuple[str, Callable[[VersionStats], str]]] = [
    ("answers", lambda s: str(s.answers)),
    ("latency p50", lambda s: _seconds(s.latency_p50_s)),
    ("latency p95", lambda s: _seconds(s.latency_p95_s)),
    ("latency p99", lambda s: _seconds(s.latency_p99_s)),
    ("first token p50", lambda s: _seconds(s.ttft_p50_s)),
    ("error rate", lambda s: f"{_rate(s.error_rate)} ({s.errors})"),
    ("abstention rate", lambda s: f"{_rate(s.abstention_rate)} ({s.abstentions})"),
    ("thumbs up / down", lambda s: f"{s.thumbs_up} / {s.thumbs_down}"),
    ("thumbs-up rate", lambda s: _rate(s.thumbs_up_rate)),
]
