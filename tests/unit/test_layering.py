"""Dependencies point one way (DESIGN.md): the API never imports the UI, and
importing the UI has no side effects such as reading its files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def ui_importers(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if any(m == "ui" or m.startswith("ui.") for m in imported_modules(path)):
            found.append(path.relative_to(ROOT).as_posix())
    return found


def test_the_api_does_not_import_the_ui() -> None:
    assert ui_importers("app/api") == []


def test_only_the_composition_root_of_app_imports_the_ui() -> None:
    assert ui_importers("app") == ["app/main.py"]


def test_the_backend_packages_do_not_import_the_ui() -> None:
    for package in ("ingestion", "retrieval", "llm"):
        assert ui_importers(package) == [], package


# Run in a fresh interpreter: the modules must be imported for the first time there.
NO_READS = """
import builtins, io, pathlib, sys
UI_DIR = pathlib.Path(sys.argv[1]).resolve()
real_open = io.open
reads = []

def watching(file, *args, **kwargs):
    if isinstance(file, (str, pathlib.PurePath)) and UI_DIR in pathlib.Path(file).resolve().parents:
        reads.append(str(file))
    return real_open(file, *args, **kwargs)

builtins.open = io.open = watching
import importlib
for path in sorted(UI_DIR.rglob("*.py")):
    parts = path.relative_to(UI_DIR.parent).with_suffix("").parts
    importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
print(reads)
"""


def test_importing_the_ui_reads_no_files() -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_READS, str(ROOT / "ui")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
        env={"PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False", "PATH": ""},
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
