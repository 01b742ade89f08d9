"""Train a LoRA adapter on a dataset folder: ``lantern finetune train``.

transformers' ``Trainer`` does the loop (seeded, checkpointed, resumable); peft
adds the adapter; ``config.py`` says how per device (QLoRA on CUDA, LoRA on the
CPU). The run folder it fills is the next steps' input:

    RUN/checkpoints/checkpoint-N/   Trainer checkpoints; a rerun resumes from the last
    RUN/adapter/                    the adapter (peft ``save_pretrained``)
    RUN/run.json                    what was trained, on what, how, and what it measured

A run stopped part-way (Ctrl-C, a killed job) resumes from its last checkpoint when
the same command runs again; a folder whose checkpoints were made with other
settings is refused rather than silently mixed.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm.finetune.base_model import BaseSpec, load_base, require_libraries, resolve_base
from llm.finetune.config import (
    Device,
    Hyperparameters,
    lora_kwargs,
    method_for,
    pick_device,
    quantization_kwargs,
    training_arguments_kwargs,
)
from llm.finetune.dataset import load_examples, load_manifest
from llm.finetune.encode import PadCollator, encode_examples
from llm.finetune.errors import FinetuneError
from llm.finetune.progress import Listener, ProgressBar, RunMeter, as_trainer_callback
from llm.finetune.run_record import (
    FORMAT,
    RUN_FILE,
    adapter_sha256,
    code_version,
    peak_memory_mb,
    write_json,
)

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
#: What the checkpoints in a run folder were made with (a resume must match it).
SETUP_FILE = "lantern-setup.json"
#: Settings a resumed run may change: how long it runs and how often it saves.
RESUMABLE_CHANGES = ("max_steps", "epochs", "save_steps", "save_total_limit")


@dataclass(frozen=True)
class TrainingData:
    """A dataset folder's manifest and its training examples."""

    path: Path
    manifest: dict[str, Any]
    examples: list[dict[str, Any]]


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` did: the ``run.json`` it wrote, and where."""

    run_dir: Path
    record: dict[str, Any]
    #: The checkpoint step this session resumed from (None: it started afresh).
    resumed_from: int | None
    #: The training loss at every step, from the first (a resumed run includes the earlier ones).
    losses: list[float]

    @property
    def adapter_dir(self) -> Path:
        return self.run_dir / ADAPTER


def read_dataset(path: Path) -> TrainingData:
    """The manifest and training split of a dataset folder (``lantern finetune dataset``)."""
    manifest = load_manifest(path)
    examples = load_examples(path, "train")
    file = path / "train.jsonl"
    for i, example in enumerate(examples, 1):
        if not _is_example(example):
            raise FinetuneError(
                f"{file}:{i} is not a training example (needs 'messages' with role and "
                "content, and a 'target' string)"
            )
    if not examples:
        raise FinetuneError(f"{file} holds no examples: nothing to train on")
    return TrainingData(path, manifest, examples)


def _is_example(example: Any) -> bool:
    if not isinstance(example, dict) or not isinstance(example.get("target"), str):
        return False
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    return all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    )


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``checkpoints/checkpoint-N`` of a run folder, if it has one."""
    folder = run_dir / CHECKPOINTS
    found = [
        (int(p.name.split("-", 1)[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-", 1)[1].isdigit()
    ]
    return max(found)[1] if found else None


def train(
    dataset_dir: Path,
    out_dir: Path,
    *,
    base: str | Path | BaseSpec | None = None,
    hp: Hyperparameters | None = None,
    device: str | None = None,
    progress: bool = False,
    console: Any = None,
    notify: Callable[[str], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a LoRA (CPU) or QLoRA (CUDA) adapter of ``base`` on ``dataset_dir``'s train split.

    ``base`` is a hub id, a directory, a ``.gguf`` file, a resolved spec, or None
    for the bundled SmolLM2. ``notify`` hears what a person should know (method and
    device, skipped examples, resuming); ``progress`` draws a bar on ``console``;
    ``callbacks`` are extra ``TrainerCallback``s.
    """
    started = time.perf_counter()
    hp = hp or Hyperparameters()
    say = notify or (lambda message: log.info("%s", message))
    data = read_dataset(Path(dataset_dir))
    spec: BaseSpec = base if isinstance(base, dict) else resolve_base(base)
    dev = pick_device(device)
    method = method_for(dev, gguf=spec["gguf_file"] is not None)
    require_libraries(device=dev, gguf=spec["gguf_file"] is not None)
    out_dir = Path(out_dir)
    setup = _setup(spec, method, dev, hp, data)
    resume = _check_resume(out_dir, setup)
    say(
        f"training with {method.upper()} on {dev.upper()}: base {spec['name']}, "
        f"{len(data.examples)} examples, seed {hp.seed}"
    )

    import transformers
    from transformers import PrinterCallback, Trainer, TrainingArguments

    transformers.set_seed(hp.seed)
    model, tokenizer = load_base(spec, device=dev)
    encoded = encode_examples(tokenizer, data.examples, max_length=hp.max_length)
    if encoded.skipped_too_long:
        say(
            f"skipped {encoded.skipped_too_long} of {len(data.examples)} examples longer than "
            f"--max-length {hp.max_length} tokens (the longest has {encoded.longest}); "
            "raise --max-length to keep them"
        )
    if not encoded.examples:
        raise FinetuneError(
            f"every example is longer than --max-length {hp.max_length} tokens "
            f"(the longest has {encoded.longest}): raise --max-length"
        )
    transformers.set_seed(hp.seed)  # the adapter's initial weights come from this seed
    model = _with_adapter(model, hp, method)

    checkpoints = out_dir / CHECKPOINTS
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_json(checkpoints / SETUP_FILE, setup)
    meter = RunMeter()
    listeners: list[Listener] = [meter]
    bar = ProgressBar(meter, console=console) if progress else None
    if bar is not None:
        listeners.append(bar)
    gguf = spec["gguf_file"] is not None
    args = TrainingArguments(**training_arguments_kwargs(hp, dev, checkpoints, gguf=gguf))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encoded.examples,  # a list is a map-style dataset
        data_collator=PadCollator(int(tokenizer.pad_token_id)),
        callbacks=[as_trainer_callback(listeners), *callbacks],
    )
    # With tqdm off the Trainer prints every log dict to stdout; our bar replaces both.
    trainer.remove_callback(PrinterCallback)
    if resume is not None:
        say(f"resuming from {resume.name} in {checkpoints}")
    adapter_dir = out_dir / ADAPTER
    with warnings.catch_warnings():
        # Saving an adapter of a GGUF base (no config.json beside it), peft says it
        # assumes the vocabulary unchanged: it is, and the user can do nothing about it.
        warnings.filterwarnings("ignore", "Could not find a config file", UserWarning)
        try:
            trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        finally:
            if bar is not None:
                bar.close()
        model.save_pretrained(str(adapter_dir))

    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    record = {
        "format": FORMAT,
        "base_model": dict(spec),
        "method": method,
        "device": dev,
        "hyperparameters": setup["hyperparameters"] | {"max_steps": hp.max_steps},
        "dataset": setup["dataset"]
        | {
            "examples": len(data.examples),
            "trained_examples": len(encoded.examples),
            "skipped_too_long": encoded.skipped_too_long,
        },
        "code_version": code_version(),
        "seed": hp.seed,
        "steps": int(trainer.state.global_step),
        "resumed_from_step": _step(resume),
        "wall_s": round(time.perf_counter() - started, 3),
        "train_s": round(meter.seconds, 3),
        "peak_memory_mb": round(peak_memory_mb(dev), 1),
        "train_tokens": int(trainer.state.num_input_tokens_seen),
        "tokens_per_s": round(meter.tokens_per_s, 2),
        "loss": {"first": losses[0] if losses else None, "last": losses[-1] if losses else None},
        "adapter_sha256": adapter_sha256(adapter_dir),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(out_dir / RUN_FILE, record)
    return TrainResult(out_dir, record, _step(resume), losses)


def _setup(
    spec: BaseSpec, method: str, device: Device, hp: Hyperparameters, data: TrainingData
) -> dict[str, Any]:
    """What the checkpoints depend on: base, method, device, hyper-parameters, dataset."""
    manifest = data.manifest
    hyper = hp.to_json(device)
    hyper.pop("max_steps")
    args = training_arguments_kwargs(hp, device, Path(), gguf=spec["gguf_file"] is not None)
    hyper["optim"] = args["optim"]
    hyper["bf16"] = args["bf16"]
    hyper["gradient_checkpointing"] = args.get("gradient_checkpointing", False)
    hyper["quantization"] = quantization_kwargs(device, gguf=spec["gguf_file"] is not None)
    return {
        "base_model": dict(spec),
        "method": method,
        "device": device,
        "hyperparameters": hyper,
        "dataset": {
            "path": str(data.path.resolve()),
            "hash": str(manifest.get("hash", "")),
            "collections": [
                str(c["id"]) if isinstance(c, dict) else str(c)
                for c in manifest.get("collections", [])
            ],
            "prompt_version": str(manifest.get("prompt_version", "")),
        },
    }


def _check_resume(out_dir: Path, setup: dict[str, Any]) -> Path | None:
    """The checkpoint to resume from, after checking it was made with these settings."""
    resume = last_checkpoint(out_dir)
    if resume is None:
        return None
    try:
        before = json.loads((out_dir / CHECKPOINTS / SETUP_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        before = None
    if before is None:
        raise FinetuneError(
            f"{out_dir / CHECKPOINTS} holds checkpoints of unknown origin: "
            "choose another --out, or delete that folder to start afresh"
        )
    changed = _differences(before, setup)
    if changed:
        raise FinetuneError(
            f"{out_dir} holds a run with other settings ({', '.join(changed)} differ), "
            "so it cannot be resumed: choose another --out, or delete "
            f"{out_dir / CHECKPOINTS} to start afresh"
        )
    return resume


def _differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    changed = []
    for key in ("base_model", "method", "device"):
        if before.get(key) != now[key]:
            changed.append(key)
    if before.get("dataset", {}).get("hash") != now["dataset"]["hash"]:
        changed.append("dataset")
    old, new = before.get("hyperparameters", {}), now["hyperparameters"]
    for key in sorted(set(old) | set(new)):
        if key not in RESUMABLE_CHANGES and old.get(key) != new.get(key):
            changed.append(key)
    return changed


def _step(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.split("-", 1)[1]) if checkpoint else None


def _with_adapter(model: Any, hp: Hyperparameters, method: str) -> Any:
    """The base wrapped with a fresh LoRA adapter (only the adapter trains)."""
    from peft import LoraConfig, get_peft_model

    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model,
            use_gradient_checkpointing=True,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    try:
        with warnings.catch_warnings():
            # peft 0.21 asks transformers 5 for a deprecated attribute: not the user's concern.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            return get_peft_model(model, LoraConfig(**lora_kwargs(hp)))
    except ValueError as e:  # e.g. target modules the architecture does not have
        raise FinetuneError(f"cannot add the LoRA adapter: {e}") from e
