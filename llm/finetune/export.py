"""``lantern finetune export RUN --gguf``: a training run's LoRA adapter as a GGUF for llama.cpp.

The laptop path, a GGUF base (``run.json`` ``base_model.gguf_file`` set): transformers
loads the base GGUF (de-quantised to fp32), peft applies ``RUN/adapter`` and
``merge_and_unload()`` folds it in, and the merged tensors the adapter touched are written
into a copy of the base GGUF (metadata, tokenizer, chat template and the other tensors
as the base has them; see ``llm.finetune.gguf_tensors``), all in f16:
``RUN/gguf/<run>-f16.gguf``. A merged GGUF rather than a GGUF LoRA adapter because the
llamacpp backend loads one file and a merged model runs at the base model's speed.
Q8_0 and Q4_K_M are made from that f16 file by llama.cpp's own quantiser
(``llm.finetune.quantize``). Files already made from the same adapter (export.json says so,
sizes match) are reused, not made again.

A Hugging Face base (a hub id or a model directory, as Qwen on a GPU host): writing a GGUF
from scratch needs llama.cpp's ``convert_hf_to_gguf.py`` (tokenizer pre-tokenizer detection,
per-architecture tensor rules), which no installable package ships and which is not
re-implemented here. The merged model is saved to ``RUN/merged/`` with ``save_pretrained``
and the export stops with ``ExportUnavailable`` giving the two llama.cpp commands to run.
(vLLM serves such a base's adapter directly, without any export.)

Each file made is recorded in ``RUN/export.json``:
``{"format": 1, "adapter_sha256", "base_model", "files": {quant: {"path" (relative to RUN),
"sha256", "bytes", "created_at"}}}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm.finetune.errors import FinetuneError
from llm.finetune.gguf_tensors import (
    ARCHITECTURES,
    GGUFWriteError,
    gguf_name_map,
    open_gguf,
    source_info,
    to_gguf_layout,
    write_f16_gguf,
)
from llm.finetune.quantize import (
    FTYPES,
    QuantizeError,
    QuantizeUnavailable,
    quantize_gguf,
    require_llama_cpp,
)

log = logging.getLogger(__name__)

QUANTS = ("f16", *FTYPES)
EXPORT_FILE = "export.json"
FINETUNE_HINT = "pip install 'lantern[finetune]'"
#: The files ``adapter_sha256`` covers (those ``save_pretrained`` writes for a LoRA adapter).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")

Progress = Callable[[str], None]


class ExportError(FinetuneError):
    """The run cannot be exported as asked; the message says what to do."""


class ExportUnavailable(ExportError):
    """A library is missing, or this kind of base cannot be exported to GGUF here."""


def normalize_quant(quant: str) -> str:
    """``"q4_k_m"`` -> ``"Q4_K_M"``; an unknown name is an ``ExportError``."""
    for known in QUANTS:
        if quant.strip().lower() == known.lower():
            return known
    raise ExportError(f"unknown quantisation {quant!r}; choose from {', '.join(QUANTS)}")


def export_gguf(
    run_dir: str | os.PathLike[str], quant: str = "f16", *, progress: Progress | None = None
) -> Path:
    """Write ``RUN/gguf/<run>-<quant>.gguf`` (merged base + adapter) and record it; its path."""
    say = progress or (lambda message: log.info("%s", message))
    quant = normalize_quant(quant)
    root = Path(run_dir).expanduser().resolve()
    run = read_run(root)
    base = run["base_model"]
    digest = adapter_sha256(root / "adapter")
    if base.get("gguf_file") is None:
        say(f"merging the adapter into {base['id']} (a Hugging Face base)")
        merged = save_merged_hf(root, base)
        raise ExportUnavailable(_hf_base_message(root, merged, quant))
    source = Path(base["id"]) / base["gguf_file"]
    if not source.is_file():
        raise ExportError(
            f"the run's base model GGUF {source} is gone; put it back (run.json base_model)"
        )
    if quant != "f16":
        try:
            require_llama_cpp(quant)  # before minutes of merging, not after
        except QuantizeUnavailable as e:
            raise ExportUnavailable(str(e)) from e
    record = _read_record(root, digest, base)
    stem = _file_stem(root)
    f16 = root / "gguf" / f"{stem}-f16.gguf"
    f16.parent.mkdir(parents=True, exist_ok=True)
    if _recorded(root, record, "f16", f16):
        say(f"reusing {f16.name} (same adapter)")
    else:
        say(f"merging {root / 'adapter'} into {source.name} and writing {f16.name}")
        write_merged_gguf(source, root / "adapter", f16)
        _record(root, record, "f16", f16)
    if quant == "f16":
        return f16
    out = root / "gguf" / f"{stem}-{quant}.gguf"
    if _recorded(root, record, quant, out):
        say(f"reusing {out.name} (same adapter)")
    else:
        say(f"quantising to {quant} with llama.cpp: {out.name}")
        _quantize(f16, out, quant)
        _record(root, record, quant, out)
    return out


def export_base_gguf(
    run_dir: str | os.PathLike[str], quant: str = "f16", *, progress: Progress | None = None
) -> Path:
    """``RUN/gguf/base/<base>-<quant>.gguf``: the run's GGUF base written the way ``export_gguf``
    writes the candidate (every tensor in f16, then llama.cpp's quantiser) but without the
    adapter, so that an evaluation compares the tuning and not two quantisations."""
    say = progress or (lambda message: log.info("%s", message))
    quant = normalize_quant(quant)
    root = Path(run_dir).expanduser().resolve()
    base = read_run(root)["base_model"]
    if base.get("gguf_file") is None:
        raise ExportUnavailable(
            f"the base {base['id']} is not a GGUF: evaluate it on vLLM (LANTERN_LLM__KIND=openai)"
        )
    source = Path(base["id"]) / base["gguf_file"]
    if not source.is_file():
        raise ExportError(f"the run's base model GGUF {source} is gone; put it back")
    # A folder of its own: no run name can make the candidate's file collide with it.
    f16 = root / "gguf" / "base" / f"{source.stem}-f16.gguf"
    f16.parent.mkdir(parents=True, exist_ok=True)
    if not f16.is_file():
        say(f"writing the base {source.name} as {f16.name}")
        try:
            write_f16_gguf(open_gguf(source), f16, {})
        except GGUFWriteError as e:
            raise ExportError(f"cannot write {f16.name}: {e}") from e
    if quant == "f16":
        return f16
    out = f16.with_name(f"{source.stem}-{quant}.gguf")
    if not out.is_file():
        say(f"quantising the base to {quant} with llama.cpp: {out.name}")
        _quantize(f16, out, quant)
    return out


def _quantize(f16: Path, out: Path, quant: str) -> None:
    """llama.cpp's quantiser on ``f16``, its failures as export errors."""
    try:
        quantize_gguf(f16, out, quant)
    except QuantizeUnavailable as e:
        raise ExportUnavailable(str(e)) from e
    except QuantizeError as e:
        raise ExportError(str(e)) from e


def read_run(root: Path) -> dict[str, Any]:
    """``RUN/run.json``, checked for what export needs, with ``RUN/adapter`` present."""
    path = root / "run.json"
    if not root.is_dir():
        raise ExportError(f"{root} is not a folder: pass a training run folder (finetune train)")
    if not path.is_file():
        raise ExportError(f"{root} has no run.json: is it a `lantern finetune train` output?")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path} is not valid JSON ({e}); train again or repair it") from e
    base = run.get("base_model") if isinstance(run, dict) else None
    if not isinstance(base, dict) or not isinstance(base.get("id"), str):
        raise ExportError(f"{path} has no base_model.id: train again or repair it")
    if base.get("gguf_file") is not None and not isinstance(base["gguf_file"], str):
        raise ExportError(f"{path}: base_model.gguf_file is not a file name")
    if not (root / "adapter" / "adapter_config.json").is_file():
        raise ExportError(
            f"{root / 'adapter'} holds no LoRA adapter (adapter_config.json): "
            "the training run did not finish; train again (it resumes from its checkpoint)"
        )
    return dict(run)


def adapter_sha256(adapter_dir: Path) -> str:
    """sha256 over the adapter's files, each as its name, a NUL, then its bytes, in name order.

    The same digest as ``run.json``'s ``adapter_sha256``: an export says which adapter it is.
    """
    h = hashlib.sha256()
    for path in sorted(p for p in adapter_dir.iterdir() if p.name in ADAPTER_FILES):
        h.update(path.name.encode() + b"\x00")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def write_merged_gguf(source: Path, adapter_dir: Path, dest: Path) -> None:
    """``dest``: the GGUF ``source`` with ``adapter_dir`` merged in, f16 (see module docs)."""
    try:
        reader = open_gguf(source)
        info = source_info(reader)
    except GGUFWriteError as e:
        raise ExportError(f"the base model {source}: {e}") from e
    arch = info["architecture"]
    if arch not in ARCHITECTURES:
        raise ExportError(
            f"GGUF export supports the {', '.join(ARCHITECTURES)} architectures; "
            f"{source.name} is {arch!r}"
        )
    replacements = merged_tensors(source, adapter_dir, info)
    try:
        write_f16_gguf(reader, dest, replacements)
    except GGUFWriteError as e:
        raise ExportError(f"cannot write {dest.name}: {e}") from e


def merged_tensors(source: Path, adapter_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
    """GGUF tensor name -> merged fp32 weights (GGUF row order), for the tensors the adapter
    changes: the LoRA-wrapped modules and any ``modules_to_save``."""
    torch, auto_model, peft = _finetune_libraries(gguf=True)
    model = _load(
        lambda: auto_model.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32
        ),
        f"base model {source}",
    )
    peft_model = _load(
        lambda: peft.PeftModel.from_pretrained(model, adapter_dir), f"adapter {adapter_dir}"
    )
    touched = _touched_modules(peft_model)
    merged = peft_model.merge_and_unload()
    state = merged.state_dict()
    names = gguf_name_map(info["architecture"], int(info["block_count"]))
    out: dict[str, Any] = {}
    for module in touched:
        gguf_module = names.get_name(module)
        if gguf_module is None:
            raise ExportError(f"the adapter changes {module}, which has no GGUF tensor name")
        for suffix in (".weight", ".bias"):
            tensor = state.get(module + suffix)
            if tensor is None:
                continue
            name = gguf_module + suffix
            if name not in info["tensors"]:
                raise ExportError(
                    f"the adapter changes {module}{suffix} but {source.name} has no {name} "
                    "(tied embeddings?): this adapter cannot be merged into the GGUF"
                )
            weights = tensor.detach().to(torch.float32).cpu().numpy()
            out[name] = to_gguf_layout(name, weights, info)
    if not out:
        raise ExportError(f"the adapter in {adapter_dir} changes no weights of the base model")
    return out


def save_merged_hf(root: Path, base: dict[str, Any]) -> Path:
    """``RUN/merged/``: a Hugging Face base with the adapter merged in (``save_pretrained``)."""
    _, auto_model, peft = _finetune_libraries(gguf=False)
    from transformers import AutoTokenizer

    label = f"base model {base['id']}"
    model = _load(lambda: auto_model.from_pretrained(base["id"], dtype="auto"), label)
    tokenizer = _load(lambda: AutoTokenizer.from_pretrained(base["id"]), label)
    adapter = root / "adapter"
    merged = _load(
        lambda: peft.PeftModel.from_pretrained(model, adapter), f"adapter {adapter}"
    ).merge_and_unload()
    out = root / "merged"
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ---------------------------------------------------------------- helpers


def _finetune_libraries(*, gguf: bool) -> tuple[Any, Any, Any]:
    try:
        import peft
        import torch
        from transformers import AutoModelForCausalLM

        if gguf:
            import gguf as _  # noqa: F401 (transformers needs it to read a GGUF)
    except ImportError as e:
        raise ExportUnavailable(f"exporting needs {e.name}: {FINETUNE_HINT}") from e
    return torch, AutoModelForCausalLM, peft


def _load(load: Callable[[], Any], what: str) -> Any:
    try:
        return load()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"cannot load the {what}: {first}") from e


def _touched_modules(peft_model: Any) -> list[str]:
    from peft.tuners.lora import LoraLayer
    from peft.utils import ModulesToSaveWrapper

    prefix = "base_model.model."
    return [
        name.removeprefix(prefix)
        for name, module in peft_model.named_modules()
        if isinstance(module, (LoraLayer, ModulesToSaveWrapper))
    ]


def _file_stem(root: Path) -> str:
    """The run folder's name, safe as a file name (``hr-v2`` -> ``hr-v2-Q8_0.gguf``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.") or "model"


def _read_record(root: Path, digest: str, base: dict[str, Any]) -> dict[str, Any]:
    """export.json as it is, or fresh when missing, unreadable, or for another adapter."""
    path = root / EXPORT_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if (
        not isinstance(record, dict)
        or record.get("adapter_sha256") != digest
        or not isinstance(record.get("files"), dict)
    ):
        record = {"format": 1, "adapter_sha256": digest, "base_model": base, "files": {}}
    return record


def _recorded(root: Path, record: dict[str, Any], quant: str, path: Path) -> bool:
    entry = record["files"].get(quant)
    return (
        isinstance(entry, dict)
        and entry.get("path") == str(path.relative_to(root))
        and path.is_file()
        and path.stat().st_size == entry.get("bytes")
    )


def _record(root: Path, record: dict[str, Any], quant: str, path: Path) -> None:
    record["files"][quant] = {
        "path": str(path.relative_to(root)),
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = root / (EXPORT_FILE + ".partial")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / EXPORT_FILE)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hf_base_message(root: Path, merged: Path, quant: str) -> str:
    stem = _file_stem(root)
    f16 = root / "gguf" / f"{stem}-f16.gguf"
    steps = f"  python llama.cpp/convert_hf_to_gguf.py {merged} --outtype f16 --outfile {f16}\n"
    if quant != "f16":
        out = root / "gguf" / f"{stem}-{quant}.gguf"
        steps += f"  llama.cpp/build/bin/llama-quantize {f16} {out} {quant}\n"
    return (
        "GGUF export of a Hugging Face base model needs llama.cpp's converter "
        "(convert_hf_to_gguf.py), which Lantern does not ship. The merged model is saved "
        f"in {merged}; with a llama.cpp checkout, run:\n{steps}"
        "(vLLM serves this run's adapter directly: no export is needed for it.)"
    )
