"""Writing a merged model as an f16 GGUF: the source GGUF's metadata and tensors, some replaced.

Why copy the source GGUF rather than build a GGUF from the Hugging Face model: the source
file already holds everything llama.cpp needs (architecture, hyper-parameters, the whole
tokenizer with its pre-tokenizer name, the chat template, tensors transformers does not
load such as ``rope_freqs``), written by llama.cpp's own converter. So every key/value is
copied as it is (only ``general.file_type`` changes to f16) and every tensor keeps its name,
shape and order; a tensor the LoRA adapter changed is taken from the merged weights, every
other one is de-quantised from the source. Types follow llama.cpp's converter for
``--outtype f16``: 1-D tensors and norms F32, everything else F16.

transformers' GGUF loader un-permutes ``attn_q`` / ``attn_k`` rows for the ``llama``
architecture (llama.cpp's converter permutes them for its rotary embedding layout); merged
q/k weights are permuted back here with the converter's own ``permute``. qwen2 and qwen3
GGUFs are not permuted by either side.

Tensors are de-quantised and written one at a time (``GGUFWriter.add_tensor_info`` first,
then ``write_tensor_data``), so memory holds one tensor beyond the replacements.
This module needs ``gguf`` and numpy only (no torch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: GGUF architectures whose merged weights this module writes correctly, and whether
#: their attn_q / attn_k rows are permuted (what transformers' loader undoes on reading).
ARCHITECTURES: dict[str, bool] = {"llama": True, "qwen2": False, "qwen3": False}


class GGUFWriteError(Exception):
    """The source GGUF or a replacement tensor cannot be written as asked."""


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py): HF rows -> GGUF rows.

    The inverse of transformers' ``LlamaTensorProcessor._reverse_permute_weights``.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return (
        weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def open_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` on ``path`` (parsing a 50k-token vocabulary takes seconds: once)."""
    from gguf import GGUFReader

    try:
        return GGUFReader(path)
    except (OSError, ValueError) as e:
        raise GGUFWriteError(f"cannot read GGUF {path}: {e}") from e


def source_info(reader: Any) -> dict[str, Any]:
    """Architecture, block and head counts of a GGUF: what mapping its tensor names needs."""
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise GGUFWriteError("no general.architecture: not a model GGUF")

    def number(key: str) -> int | None:
        value = _field(reader, f"{arch}.{key}")
        return int(value) if isinstance(value, (int, np.integer)) else None

    return {
        "architecture": arch,
        "block_count": number("block_count"),
        "head_count": number("attention.head_count"),
        "head_count_kv": number("attention.head_count_kv"),
        "tensors": {t.name: _numpy_shape(t) for t in reader.tensors},
    }


def gguf_name_map(architecture: str, block_count: int) -> Any:
    """gguf's ``TensorNameMap``: Hugging Face module names -> GGUF tensor names."""
    import gguf

    arch = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == architecture), None)
    if arch is None:
        raise GGUFWriteError(f"the gguf library does not know architecture {architecture!r}")
    return gguf.get_tensor_name_map(arch, block_count)


def to_gguf_layout(name: str, weights: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
    """A merged Hugging Face tensor in the row order the GGUF ``name`` has."""
    if not ARCHITECTURES.get(info["architecture"], False):
        return weights
    n_head, n_head_kv = info["head_count"], info["head_count_kv"]
    if ".attn_q." in name:
        return permute(weights, n_head, n_head)
    if ".attn_k." in name:
        return permute(weights, n_head, n_head_kv)
    return weights


def write_f16_gguf(reader: Any, dest: Path, replacements: Mapping[str, np.ndarray]) -> None:
    """Write ``dest``: the GGUF ``reader`` reads, in f16, with ``replacements`` swapped in.

    Written to a temporary name and renamed, so a failed export never leaves a
    truncated GGUF behind.
    """
    import gguf

    if reader.endianess != gguf.GGUFEndian.LITTLE:
        raise GGUFWriteError("the base is a big-endian GGUF; only little-endian is supported")
    names = {t.name for t in reader.tensors}
    unknown = sorted(set(replacements) - names)
    if unknown:
        raise GGUFWriteError(f"merged tensors {', '.join(unknown[:5])} are not in the base GGUF")
    arch = _field(reader, "general.architecture")
    tmp = dest.with_name(dest.name + ".partial")
    writer = gguf.GGUFWriter(tmp, str(arch))
    try:
        _copy_metadata(reader, writer)
        plan = []
        for tensor in reader.tensors:
            shape = _numpy_shape(tensor)
            new = replacements.get(tensor.name)
            if new is not None and tuple(new.shape) != shape:
                raise GGUFWriteError(
                    f"merged {tensor.name} has shape {tuple(new.shape)}, the GGUF {shape}"
                )
            dtype = _output_dtype(tensor, shape)
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            writer.add_tensor_info(tensor.name, shape, np.dtype(dtype), nbytes)
            plan.append((tensor, new, dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor, new, dtype in plan:
            data = new if new is not None else _dequantize(tensor)
            writer.write_tensor_data(np.ascontiguousarray(data, dtype=dtype))
        writer.close()
        tmp.replace(dest)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    log.info("wrote %s (%d tensors, %d replaced)", dest, len(plan), len(replacements))


# ---------------------------------------------------------------- helpers


def _field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return field.contents() if field is not None else None


def _numpy_shape(tensor: Any) -> tuple[int, ...]:
    # GGUF stores ne (fastest dimension first); numpy and torch list it last.
    return tuple(int(n) for n in reversed(tensor.shape.tolist()))


def _output_dtype(tensor: Any, shape: tuple[int, ...]) -> type[np.generic]:
    from gguf import GGMLQuantizationType as T

    if tensor.tensor_type in (T.I8, T.I16, T.I32, T.I64, T.F64):
        raise GGUFWriteError(f"tensor {tensor.name} is {tensor.tensor_type.name}: not supported")
    if len(shape) <= 1 or tensor.name.endswith("_norm.weight"):
        return np.float32
    return np.float16


def _dequantize(tensor: Any) -> np.ndarray:
    from gguf.quants import dequantize

    return np.asarray(dequantize(tensor.data, tensor.tensor_type)).reshape(_numpy_shape(tensor))


def _copy_metadata(reader: Any, writer: Any) -> None:
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue  # the header and the architecture: the writer writes those itself
        if field.name == gguf.Keys.General.FILE_TYPE:
            continue  # f16 now
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
        if field.name == gguf.Keys.General.ALIGNMENT:
            writer.data_alignment = int(field.contents())
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
