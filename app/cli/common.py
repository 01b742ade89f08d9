"""Shared CLI plumbing: building the container, logging, output helpers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler

from app.container import Container
from app.environment import apply_defaults
from app.settings import get_settings

console = Console()
err_console = Console(stderr=True)


def setup_logging(verbose: bool) -> None:
    configured = os.environ.get("LANTERN_LOG_LEVEL", "WARNING").upper()
    level = logging.INFO if verbose else logging.getLevelName(configured)
    if not isinstance(level, int):
        level = logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # Third-party chatter that says nothing actionable to a CLI user.
    for name in ("sentence_transformers", "httpx", "huggingface_hub", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR if not verbose else logging.INFO)
    apply_defaults()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except Exception:  # transformers is optional at this point; nothing to silence
        pass


@contextmanager
def open_container(*, migrate: bool = True) -> Iterator[Container]:
    """Settings from the environment, schema brought up to date, closed on exit."""
    container = Container(get_settings())
    try:
        if migrate:
            container.migrate()
        yield container
    finally:
        container.close()


def short(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
