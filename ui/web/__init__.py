"""The Gradio app: employee chat and the admin console, on the same services as the API.

``ChatUI``, ``AdminUI``, ``StatusUI`` and ``ModelsUI`` hold the handlers (callable without a
browser); ``build_ui`` lays out the Blocks and wires them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ui.web.admin import AdminUI
from ui.web.chat import ChatUI
from ui.web.layout import build_ui
from ui.web.models import ModelsUI
from ui.web.status import StatusUI

__all__ = ["AdminUI", "ChatUI", "ModelsUI", "StatusUI", "build_ui", "css"]


@cache
def css() -> str:
    """The app's stylesheet (read when the UI is built, not at import)."""
    return (Path(__file__).parent.parent / "static" / "lantern.css").read_text(encoding="utf-8")
