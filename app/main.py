"""The composition root: the API, with the browser UI mounted when settings ask for it.

The only module of ``app`` that knows ``ui``: the API does not import the UI, and
the UI imports the services. ``lantern serve`` runs this; so can uvicorn:
``uvicorn --factory app.main:build_app``.
"""

from __future__ import annotations

import importlib.util
import logging

from fastapi import FastAPI

from app.api.app import create_app
from app.container import Container
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)


def build_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The web app: the API and, when ``settings.server.ui`` is on and gradio is
    installed, the UI at /ui with its log-in page. Arguments as ``create_app``."""
    s = container.settings if container else (settings or get_settings())
    return create_app(s, container=container, extend=_mount_ui if s.server.ui else None)


def _mount_ui(app: FastAPI) -> FastAPI:
    if importlib.util.find_spec("gradio") is None:
        log.warning("the web UI is off: gradio is not installed")
        return app
    from ui.mount import mount_ui

    return mount_ui(app, lambda: app.state.container)
