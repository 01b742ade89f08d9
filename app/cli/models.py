"""``lantern models``: the registry of fine-tuned model versions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.common import console, err_console, open_container
from app.db.model_versions import ModelVersion
from app.errors import LanternError
from app.services.actor import Actor
from app.services.model_compare import VersionStats

models_app = typer.Typer(
    help="Model versions: list, promote, roll back, retire, compare.", no_args_is_help=True
)


# -- the registry: list, register, promote, rollback, retire, A/B share ----------------

CLI = Actor.cli()


@contextmanager
def _clear_errors() -> Iterator[None]:
    """A refusal (not found, gate failed, deploy failed...) as one red line, exit 2."""
    try:
        yield
    except LanternError as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e


def _gate(v: ModelVersion) -> str:
    gate = (v.metrics or {}).get("gate")
    if gate is None:
        return "not evaluated"
    return "passed" if gate.get("passed") else "failed"


def _row(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "status": v.status,
        "traffic_share": v.traffic_share,
        "base_model": v.base_model,
        "previous_active": v.previous_active,
        "gate": _gate(v),
        "collection_ids": list(v.collection_ids or ()),
        "dataset_hash": v.dataset_hash,
        "run_dir": v.run_dir,
        "adapter_path": v.adapter_path,
        "adapter_sha256": v.adapter_sha256,
        "gguf_path": v.gguf_path,
        "gguf_sha256": v.gguf_sha256,
        "metrics": v.metrics,
        "created_by": v.created_by,
        "created_at": v.created_at.isoformat() if v.created_at else None,
    }


@models_app.command("list")
def list_versions(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every model version: status, A/B share, gate result, base model."""
    with open_container() as c, _clear_errors():
        versions = c.model_registry.list(CLI)
    if as_json:
        print(json.dumps([_row(v) for v in versions], ensure_ascii=False, indent=2))
        return
    if not versions:
        console.print("no model versions yet (`lantern models register RUN` adds one)")
        return
    table = Table()
    for col in ("name", "status", "share", "gate", "base model", "collections", "created"):
        table.add_column(col, overflow="fold")
    colour = {"active": "green", "retired": "dim"}
    for v in versions:
        table.add_row(
            v.name,
            f"[{colour.get(v.status, 'yellow')}]{v.status}[/]",
            f"{v.traffic_share:.0%}" if v.status == "candidate" else "-",
            _gate(v),
            v.base_model,
            str(len(v.collection_ids or ())),
            v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "",
        )
    console.print(table)


@models_app.command("register")
def register(
    run: Annotated[Path, typer.Argument(help="Training run folder (`finetune train --out`).")],
    name: Annotated[
        str | None, typer.Option(help="Version name (default: <base>-<yyyymmdd-hhmm>).")
    ] = None,
    quant: Annotated[
        str | None, typer.Option(help="Which GGUF export to serve (default: Q8_0 if there).")
    ] = None,
) -> None:
    """Record a finished training run as a candidate version (it serves nobody yet)."""
    with open_container() as c, _clear_errors():
        v = c.model_registry.register(CLI, run, name, quant=quant)
    console.print(
        f"registered [bold]{v.name}[/] (candidate, gate {_gate(v)}); "
        f"`lantern models promote {v.name}` makes it the active version"
    )


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="The version.")],
    force: Annotated[
        bool, typer.Option("--force", help="Promote although its gate failed (audited).")
    ] = False,
) -> None:
    """Make a version the active one (its evaluation gate must have passed)."""
    with open_container() as c, _clear_errors():
        v = c.model_registry.promote(CLI, name, force=force)
    before = v.previous_active or "the base model"
    console.print(f"[green]{v.name} is active[/] (was: {before}; `lantern models rollback` undoes)")


@models_app.command("rollback")
def rollback() -> None:
    """Retire the active version; the one active before it (or the base model) returns."""
    with open_container() as c, _clear_errors():
        done = c.model_registry.rollback(CLI)
    now = done.active.name if done.active is not None else "the base model"
    console.print(f"retired {done.retired.name}; {now} answers now")


@models_app.command("retire")
def retire(name: Annotated[str, typer.Argument(help="The version.")]) -> None:
    """Stop serving a version and take it off the model server."""
    with open_container() as c, _clear_errors():
        v = c.model_registry.retire(CLI, name)
    console.print(f"retired {v.name}")


@models_app.command("ab")
def ab(
    name: Annotated[str, typer.Argument(help="A candidate version.")],
    share: Annotated[
        float, typer.Option("--share", help="Fraction of users it answers, 0 to 1 (0 ends it).")
    ],
) -> None:
    """A/B test: give a candidate a share of users (sticky by user id)."""
    with open_container() as c, _clear_errors():
        v = c.model_registry.set_share(CLI, name, share)
    if v.traffic_share:
        console.print(f"{v.name} answers {v.traffic_share:.0%} of eligible users")
    else:
        console.print(f"{v.name} is out of the A/B test")


# -- lantern models compare (serving: A/B metrics from the stored answers) ------------------


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
