"""The README stays true: its two set-up commands, and its configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_starts_with_exactly_two_setup_commands() -> None:
    commands = setup_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "lantern demo" in commands[0]
    assert "torch" not in commands[0] or "2.13.0" in commands[0]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == setup_commands()[1]


def test_the_test_command_builds_llama_cpp_portably_first() -> None:
    """A llama.cpp built for one CPU (a wheel from pip's cache included) can segfault on
    another: the README builds it for any CPU, uncached, before the project's install,
    and pins the same version everywhere, so that install keeps it instead of rebuilding."""
    command = setup_commands()[1]
    portable = re.search(
        r"""CMAKE_ARGS="-DGGML_NATIVE=OFF" \.venv/bin/pip install --no-cache-dir """
        r"""'llama-cpp-python\[server\]==([\d.]+)'""",
        command,
    )
    assert portable, "the test command must build llama-cpp-python with -DGGML_NATIVE=OFF"
    assert portable.start() < command.index("pip install -e '.[dev]'")
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = re.findall(r'"llama-cpp-python(?:\[server\])?([^"]*)"', pyproject)
    assert pins == [f"=={portable.group(1)}"] * 2, "the llamacpp and dev extras pin that version"


def test_configuration_table_lists_every_setting() -> None:
    assert settings_markdown() in (ROOT / "README.md").read_text(), (
        "README's configuration table is stale: paste app.settings.settings_markdown()"
    )


def test_torch_is_pinned_to_the_cpu_build() -> None:
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()
