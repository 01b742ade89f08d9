"""``RUN/run.json``: what a training run was, so it can be reproduced and registered.

It names the base model, the method and device, the hyper-parameters, the dataset
(by hash, collections and prompt version: a model version may only serve users who
can read every collection it was trained on), the code version, and what the run
measured (wall time, peak memory, tokens, tokens/s, first and last loss), with a
hash of the adapter files so the registry can tell one adapter from another.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from llm.finetune.config import Device

FORMAT = 1
RUN_FILE = "run.json"
#: The files ``PeftModel.save_pretrained`` writes that make up the adapter.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def code_version() -> str:
    """The ``lantern`` package version, plus the git commit when run from a checkout.

    ``0.1.0+g1a2b3c4`` (``.dirty`` when the checkout has uncommitted changes).
    """
    try:
        version = metadata.version("lantern")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    sha = _git("rev-parse", "--short=12", "HEAD")
    if not sha:
        return version
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{version}+g{sha}" + (".dirty" if dirty else "")


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def adapter_sha256(adapter_dir: Path) -> str:
    """sha256 over the adapter's files, each as its name then its bytes, in name order."""
    h = hashlib.sha256()
    files = sorted(p for p in adapter_dir.iterdir() if p.name in ADAPTER_FILES)
    if not files:
        raise FileNotFoundError(f"{adapter_dir} holds no adapter files")
    for path in files:
        h.update(path.name.encode() + b"\x00")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def peak_memory_mb(device: Device) -> float:
    """Peak memory of this run: CUDA memory allocated on a GPU, the process's max RSS on the CPU."""
    if device == "cuda":
        import torch

        return float(torch.cuda.max_memory_allocated()) / 2**20
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` whole or not at all (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
