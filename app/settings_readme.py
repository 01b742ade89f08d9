"""Regenerate the README's configuration table from the settings:
``python -m app.settings_readme [README.md]`` replaces the contiguous table that starts
at its header line by ``settings_markdown()``."""

from __future__ import annotations

import sys
from pathlib import Path

from app.settings import settings_markdown

HEADER = "| variable | default | meaning |"


def regenerate(text: str) -> str:
    """``text`` with the table under ``HEADER`` replaced (ValueError when it has none)."""
    lines = text.split("\n")
    try:
        start = lines.index(HEADER)
    except ValueError as e:
        raise ValueError(f"no line {HEADER!r} to put the table under") from e
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], settings_markdown(), *lines[end:]])


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(regenerate(path.read_text()))


if __name__ == "__main__":
    main()
