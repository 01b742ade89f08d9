"""What a training run folder says about itself, as the registry records it.

A run folder (``lantern finetune train DATASET --out RUN``) holds ``run.json`` and
``adapter/`` when training finished; ``lantern finetune export RUN --gguf`` adds
``export.json`` (and the GGUF files) and ``lantern finetune eval RUN`` adds
``eval.json`` (the gate report). The last two may come before or after registration:
the registry reads them again when a version is promoted.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import InvalidInput

#: The GGUF taken when a run has several and none is asked for: near-lossless and half
#: the size of f16 first, then the smallest, then the exact one.
QUANT_PREFERENCE = ("Q8_0", "Q4_K_M", "f16")
#: run.json numbers the registry keeps in ``metrics["run"]``.
RUN_FIELDS = (
    "method",
    "device",
    "seed",
    "steps",
    "wall_s",
    "peak_memory_mb",
    "train_tokens",
    "tokens_per_s",
    "loss",
    "hyperparameters",
    "code_version",
    "finished_at",
    "base_model",
)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Names a version may not take: ``base`` stands for the base model in comparisons.
RESERVED_NAMES = frozenset({"base"})


@dataclass(frozen=True)
class RunRecord:
    run_dir: str
    base_model: str
    #: A short name for the base (for default version names).
    base_name: str
    adapter_path: str
    adapter_sha256: str
    dataset_hash: str
    collection_ids: list[str]
    run: dict[str, Any]
    finished_at: datetime | None
    outputs: RunOutputs


def check_name(name: str) -> str:
    """A version name vLLM can serve as a model name, or ``InvalidInput``."""
    name = name.strip()
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"version name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise InvalidInput(f"version name {name!r} is reserved for the base model")
    return name


def default_name(record: RunRecord) -> str:
    """``<base short name>-<yyyymmdd-hhmm>`` of when the run finished (or now)."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", record.base_name.lower()).strip("-._") or "model"
    when = record.finished_at or datetime.now(UTC)
    return f"{stem[:80]}-{when.strftime('%Y%m%d-%H%M')}"


def read_run(run_dir: str | Path, *, quant: str | None = None) -> RunRecord:
    """The run folder's record; ``InvalidInput`` saying what is missing or broken."""
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise InvalidInput(
            f"{root} is not a folder: give the run folder `lantern finetune train --out` wrote"
        )
    root = root.resolve()
    run = _require_json(root / "run.json")
    if run.get("format") != 1:
        raise InvalidInput(f"{root / 'run.json'}: format {run.get('format')!r}, expected 1")
    base = run.get("base_model")
    dataset = run.get("dataset")
    missing = [
        key
        for key, ok in (
            ("base_model.id", isinstance(base, dict) and isinstance(base.get("id"), str)),
            ("adapter_sha256", isinstance(run.get("adapter_sha256"), str)),
            ("dataset.hash", isinstance(dataset, dict) and isinstance(dataset.get("hash"), str)),
        )
        if not ok
    ]
    if missing:
        raise InvalidInput(f"{root / 'run.json'} lacks {', '.join(missing)}: train the run again")
    assert isinstance(base, dict)
    assert isinstance(dataset, dict)
    adapter = root / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise InvalidInput(
            f"no adapter in {adapter} (adapter_config.json missing): the run did not finish; "
            "train again, or resume it with the same --out"
        )
    collections = dataset.get("collections") or []
    base_id = str(base["id"])
    return RunRecord(
        run_dir=str(root),
        base_model=base_id,
        base_name=str(base.get("name") or Path(base.get("gguf_file") or base_id).stem),
        adapter_path=str(adapter),
        adapter_sha256=str(run["adapter_sha256"]),
        dataset_hash=str(dataset["hash"]),
        collection_ids=[str(c) for c in collections],
        run=finite(
            {k: run[k] for k in RUN_FIELDS if k in run}
            | {"prompt_version": dataset.get("prompt_version")}
        ),
        finished_at=_when(run.get("finished_at")),
        outputs=read_outputs(root, quant=quant),
    )


@dataclass(frozen=True)
class RunOutputs:
    """What evaluation and export added to a run folder."""

    gate: dict[str, Any] | None = None
    gguf_quant: str | None = None
    gguf_path: str | None = None
    gguf_sha256: str | None = None
    gguf_files: dict[str, Any] = field(default_factory=dict)


def read_outputs(run_dir: str | Path, *, quant: str | None = None) -> RunOutputs:
    """The run's gate report (eval.json) and GGUF export (export.json) as the folder holds
    them now; ``quant`` picks the GGUF (default: ``QUANT_PREFERENCE``)."""
    root = Path(run_dir)
    gate = finite(_read_json(root / "eval.json"))
    if gate is not None and not isinstance(gate.get("passed"), bool):
        raise InvalidInput(f"{root / 'eval.json'} has no true/false 'passed': evaluate again")
    export = _read_json(root / "export.json") or {}
    files = export.get("files") or {}
    if not isinstance(files, dict):
        raise InvalidInput(f"{root / 'export.json'}: 'files' is not an object; export again")
    chosen = _choose_quant(files, quant, root)
    if chosen is None:
        return RunOutputs(gate=gate)
    entry = files[chosen]
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise InvalidInput(f"{root / 'export.json'}: no path for {chosen}; export again")
    gguf = Path(entry["path"])
    gguf = gguf if gguf.is_absolute() else root / gguf
    if not gguf.is_file():
        raise InvalidInput(
            f"export.json names {gguf} but there is no such file: "
            f"run `lantern finetune export {root} --gguf --quant {chosen}` again"
        )
    return RunOutputs(gate, chosen, str(gguf), _opt_str(entry.get("sha256")), files)


def _choose_quant(files: dict[str, Any], quant: str | None, root: Path) -> str | None:
    if quant is not None:
        if quant not in files:
            have = ", ".join(sorted(files)) or "none"
            raise InvalidInput(
                f"the run has no {quant} GGUF (exported: {have}): "
                f"run `lantern finetune export {root} --gguf --quant {quant}`"
            )
        return quant
    for q in QUANT_PREFERENCE:
        if q in files:
            return q
    return sorted(files)[0] if files else None


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: neither JSON nor PostgreSQL's json
    holds them, and a diverged loss is NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _require_json(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if data is None:
        raise InvalidInput(
            f"no {path.name} in {path.parent}: is this a finished training run folder "
            "(`lantern finetune train DATASET --out DIR`)?"
        )
    return data


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(f"{path} cannot be read as JSON ({e}); write it again") from e
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} holds no JSON object; write it again")
    return data


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
