"""The installed llama-cpp-python was built for any x86-64 CPU with AVX2, not for one CPU.

llama.cpp's default build (``-march=native``) compiles in every instruction set of
the build machine; its wheel, reused from pip's cache on another CPU, can segfault in
the first decode. llama.cpp reports the instruction sets it was compiled with (not
the ones this CPU has) in ``llama_print_system_info()``; a portable build
(``CMAKE_ARGS="-DGGML_NATIVE=OFF"``) stops at AVX2/FMA/F16C/BMI2. Read in a child
process: no test loads llama.cpp into the test process.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
import sys

import pytest

#: Compiled in only by a build for a CPU that has them (``GGML_NATIVE=ON``, or asked for).
ONE_CPU_ONLY = ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_INT8")
SYSTEM_INFO = "llama_cpp.llama_print_system_info().decode()"
REBUILD = (
    """CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/pip install --no-cache-dir --force-reinstall """
    "--no-deps llama-cpp-python==0.3.36"
)


def compiled_features(system_info: str) -> set[str]:
    """``{"AVX2", ...}`` from ``"CPU : SSE3 = 1 | AVX2 = 1 | ..."``."""
    return {name for name, value in re.findall(r"(\w+) = (\w+)", system_info) if value != "0"}


def one_cpu_features(system_info: str) -> list[str]:
    return sorted(compiled_features(system_info) & set(ONE_CPU_ONLY))


def test_a_native_build_is_recognised() -> None:
    native = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | "
    portable = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    assert one_cpu_features(native) == ["AMX_INT8", "AVX512"]
    assert one_cpu_features(portable) == []


def test_llama_cpp_was_built_for_any_cpu() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        pytest.skip(f"checks x86-64 builds only, not {platform.machine()}")
    if os.environ.get("LANTERN_TEST_NATIVE_LLAMA_CPP") == "1":
        pytest.skip("LANTERN_TEST_NATIVE_LLAMA_CPP=1: built for this CPU on purpose")
    child = subprocess.run(
        [sys.executable, "-c", f"import llama_cpp; print({SYSTEM_INFO})"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, f"importing llama_cpp failed:\n{child.stderr[-3000:]}"
    # Guards against a format change that would make the check below pass vacuously.
    assert "AVX2" in compiled_features(child.stdout), f"unexpected system info: {child.stdout}"
    assert not one_cpu_features(child.stdout), (
        f"llama-cpp-python was built for one CPU ({', '.join(one_cpu_features(child.stdout))}"
        f" compiled in) and can crash on others; rebuild it portably:\n  {REBUILD}\n"
        "or set LANTERN_TEST_NATIVE_LLAMA_CPP=1 if you built it for this machine on purpose"
    )
