"""Quantising an f16 GGUF with llama.cpp itself, in a child process.

``llama_cpp.llama_model_quantize`` (llama-cpp-python, ``pip install 'lantern[llamacpp]'``)
is llama.cpp's own quantiser: the same code as ``llama-quantize``, with its per-tensor
choices for the mixed K-quants (Q4_K_M keeps some tensors at Q6_K, and falls back to a
legacy type for rows not divisible by 256). It runs in a child interpreter
(``python -m llm.finetune.quantize IN OUT QUANT``) because a crash in native code would
otherwise take the caller with it (a server, a test run), and because llama.cpp writes a
line per tensor to stderr: the child's output is kept and shown only when it fails.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

INSTALL_HINT = "pip install 'lantern[llamacpp]'"
#: Our names for llama.cpp's file types (``--quant``), and the llama_cpp constant of each.
FTYPES = {"Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
#: Seconds a quantisation may take (7B on a laptop is minutes; this is a hang guard).
TIMEOUT_S = 3 * 3600


class QuantizeError(Exception):
    """llama.cpp could not quantise the file; the message says why."""


class QuantizeUnavailable(QuantizeError):
    """llama-cpp-python is not installed."""


def quantize_gguf(source: Path, dest: Path, quant: str, *, threads: int = 0) -> None:
    """Write ``dest``, ``source`` (an f16 GGUF) quantised to ``quant`` (a key of ``FTYPES``).

    Written to a temporary name and renamed: a failure leaves no partial file.
    ``threads`` 0 lets llama.cpp use every core.
    """
    if quant not in FTYPES:
        raise QuantizeError(f"unknown quantisation {quant!r}; choose from {', '.join(FTYPES)}")
    require_llama_cpp(quant)
    tmp = dest.with_name(dest.name + ".partial")
    command = [sys.executable, "-m", "llm.finetune.quantize", str(source), str(tmp), quant]
    with tempfile.TemporaryFile() as log:
        try:
            child = subprocess.run(
                [*command, str(threads)],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT_S,
                env=_env(),
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            tmp.unlink(missing_ok=True)
            raise QuantizeError(f"llama.cpp did not finish quantising within {TIMEOUT_S}s") from e
        log.seek(0)
        output = log.read().decode(errors="replace")
    if child.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise QuantizeError(
            f"llama.cpp failed to quantise {source.name} to {quant} "
            f"({_describe(child.returncode)}); its output ends:\n{output[-3000:]}"
        )
    tmp.replace(dest)


def require_llama_cpp(quant: str) -> None:
    """Raise ``QuantizeUnavailable`` unless llama-cpp-python is installed (found, not loaded)."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise QuantizeUnavailable(
            f"quantising to {quant} uses llama.cpp through llama-cpp-python, which is not "
            f"installed: {INSTALL_HINT} (or export --quant f16)"
        )


def _env() -> dict[str, str]:
    """This environment, with the directory holding ``llm`` importable in the child."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"it died from {signal.Signals(-returncode).name}"
        except ValueError:
            return f"it died from signal {-returncode}"
    return f"exit status {returncode}"


def main(argv: list[str]) -> int:
    """The child: ``IN OUT QUANT THREADS``; exit status 0 when llama.cpp succeeded."""
    source, dest, quant, threads = argv
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[quant])
    params.nthread = int(threads)
    status = llama_cpp.llama_model_quantize(source.encode(), dest.encode(), ctypes.byref(params))
    if status != 0:
        print(f"llama_model_quantize returned {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
