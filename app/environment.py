"""Process environment defaults set by entry points (never at import, never by the
container): the libraries Lantern uses stay quiet and do not phone home."""

from __future__ import annotations

import os

DEFAULTS = {
    # unstructured and Gradio send usage analytics unless told not to.
    "DO_NOT_TRACK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    # tokenizers warns (and may deadlock) when a process forks after using its threads.
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def apply_defaults() -> None:
    """Set each default the environment does not set already (a user's value wins)."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
