"""What a training run is configured with, per device, as plain data.

The defaults are the QLoRA paper's recipe (Dettmers et al. 2023, "QLoRA: Efficient
Finetuning of Quantized LLMs"): LoRA rank 16, alpha 32, dropout 0.05 on the
attention's query and value projections, learning rate 2e-4 on a constant schedule,
gradient norm clipped at 0.3, an effective batch of 16; on CUDA the frozen base is
4-bit NF4 with double quantisation, computed in bf16, with paged 8-bit AdamW and
gradient checkpointing. On the CPU the same adapter trains on an fp32 base
(bitsandbytes' 4-bit layers are CUDA kernels) with a smaller effective batch, so a
laptop finishes a few dozen steps in minutes.

Everything here is a pure function of its arguments, so the CUDA configuration is
tested on a machine without a GPU; ``train.py`` turns these dicts into library
objects.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from llm.finetune.errors import FinetuneError

Device = Literal["cpu", "cuda"]
Method = Literal["lora", "qlora"]
DEVICES: tuple[Device, ...] = ("cpu", "cuda")

#: The QLoRA paper's LoRA targets for the small-budget setting: query and value.
DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "v_proj")
#: peft's shorthand for every linear layer but the output head (the paper's best setting).
ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class Hyperparameters:
    """One run's knobs; recorded in ``run.json`` as they were used."""

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    #: Module names to adapt, or ``"all-linear"``.
    target_modules: tuple[str, ...] | str = DEFAULT_TARGETS
    learning_rate: float = 2e-4
    lr_scheduler: str = "constant"
    max_grad_norm: float = 0.3
    weight_decay: float = 0.0
    batch_size: int = 4
    #: None: 4 on CUDA (4 x 4 = the paper's batch of 16), 1 on the CPU.
    gradient_accumulation_steps: int | None = None
    epochs: float = 1.0
    #: Stop after this many optimiser steps (overrides ``epochs``).
    max_steps: int | None = None
    #: Examples whose prompt and reply together are longer are skipped (and counted).
    max_length: int = 1024
    save_steps: int = 50
    #: Checkpoints kept under ``checkpoints/`` (the newest; older ones are deleted).
    save_total_limit: int = 2
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("lora_r", "lora_alpha", "batch_size", "max_length", "save_steps"):
            if getattr(self, name) < 1:
                raise FinetuneError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not 0 <= self.lora_dropout < 1:
            raise FinetuneError(f"lora_dropout must be in [0, 1), not {self.lora_dropout}")
        if self.learning_rate <= 0:
            raise FinetuneError(f"learning_rate must be positive, not {self.learning_rate}")
        if self.max_steps is not None and self.max_steps < 1:
            raise FinetuneError(f"max_steps must be at least 1, not {self.max_steps}")
        if self.gradient_accumulation_steps is not None and self.gradient_accumulation_steps < 1:
            raise FinetuneError("gradient_accumulation_steps must be at least 1")
        if isinstance(self.target_modules, str) and self.target_modules != ALL_LINEAR:
            raise FinetuneError(
                f"target_modules is a list of module names or {ALL_LINEAR!r}, "
                f"not {self.target_modules!r}"
            )
        if not self.target_modules:
            raise FinetuneError("target_modules is empty: name at least one module")

    def accumulation(self, device: Device) -> int:
        """Gradient accumulation steps on ``device`` (the default depends on it)."""
        if self.gradient_accumulation_steps is not None:
            return self.gradient_accumulation_steps
        return 4 if device == "cuda" else 1

    def to_json(self, device: Device) -> dict[str, Any]:
        """As recorded in ``run.json``: the values used on ``device``."""
        d = asdict(self)
        d["target_modules"] = (
            self.target_modules
            if isinstance(self.target_modules, str)
            else list(self.target_modules)
        )
        d["gradient_accumulation_steps"] = self.accumulation(device)
        return d


def parse_targets(text: str) -> tuple[str, ...] | str:
    """``--target`` as typed: ``all-linear`` or comma-separated module names."""
    text = text.strip()
    if text == ALL_LINEAR:
        return ALL_LINEAR
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise FinetuneError(f"--target: give module names (q_proj,v_proj) or {ALL_LINEAR}")
    return names


def pick_device(requested: str | None = None) -> Device:
    """CUDA when a GPU is visible (or asked for), else the CPU."""
    if requested is not None:
        if requested not in DEVICES:
            raise FinetuneError(f"unknown device {requested!r}; choose from {', '.join(DEVICES)}")
        if requested == "cuda" and not _cuda_available():
            raise FinetuneError("--device cuda was asked for, but torch sees no CUDA GPU")
        return requested
    return "cuda" if _cuda_available() else "cpu"


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def method_for(device: Device, *, gguf: bool = False) -> Method:
    """QLoRA (a 4-bit base) on CUDA, plain LoRA on the CPU.

    A GGUF base is always plain LoRA: transformers loads it de-quantised and cannot
    quantise it again to 4 bits (on CUDA it trains in bf16).
    """
    return "qlora" if device == "cuda" and not gguf else "lora"


def quantization_kwargs(device: Device, *, gguf: bool = False) -> dict[str, Any] | None:
    """``BitsAndBytesConfig`` arguments for the frozen base, or None (not quantised)."""
    if method_for(device, gguf=gguf) != "qlora":
        return None
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "bfloat16",
    }


def lora_kwargs(hp: Hyperparameters) -> dict[str, Any]:
    """``peft.LoraConfig`` arguments."""
    targets = hp.target_modules
    return {
        "r": hp.lora_r,
        "lora_alpha": hp.lora_alpha,
        "lora_dropout": hp.lora_dropout,
        "target_modules": targets if isinstance(targets, str) else list(targets),
        "bias": "none",
        "task_type": "CAUSAL_LM",
    }


def training_arguments_kwargs(
    hp: Hyperparameters, device: Device, checkpoints: Path, *, gguf: bool = False
) -> dict[str, Any]:
    """``transformers.TrainingArguments`` arguments; checkpoints go under ``checkpoints``.

    QLoRA: bf16, paged 8-bit AdamW, gradient checkpointing; LoRA on CUDA (a GGUF
    base): bf16; on the CPU: fp32.
    """
    kwargs: dict[str, Any] = {
        "output_dir": str(checkpoints),
        "per_device_train_batch_size": hp.batch_size,
        "gradient_accumulation_steps": hp.accumulation(device),
        "learning_rate": hp.learning_rate,
        "lr_scheduler_type": hp.lr_scheduler,
        "max_grad_norm": hp.max_grad_norm,
        "weight_decay": hp.weight_decay,
        "num_train_epochs": hp.epochs,
        "max_steps": hp.max_steps if hp.max_steps is not None else -1,
        "seed": hp.seed,
        "data_seed": hp.seed,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": hp.save_steps,
        "save_total_limit": hp.save_total_limit,
        "include_num_input_tokens_seen": "non_padding",
        # Our collator builds exactly the model's inputs; our callback shows progress.
        "remove_unused_columns": False,
        "disable_tqdm": True,
        "report_to": "none",
        "dataloader_num_workers": 0,
    }
    if method_for(device, gguf=gguf) == "qlora":
        kwargs.update(
            bf16=True,
            optim="paged_adamw_8bit",
            gradient_checkpointing=True,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif device == "cuda":
        kwargs.update(bf16=True, optim="adamw_torch")
    else:
        kwargs.update(use_cpu=True, bf16=False, fp16=False, optim="adamw_torch")
    return kwargs
