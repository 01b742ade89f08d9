"""Mount the UI into the FastAPI app, behind the API's own log-in."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import SESSION_COOKIE
from app.errors import LanternError
from ui.login import UI_PATH, login_csp, router

if TYPE_CHECKING:
    from ui.web import AdminUI, ChatUI


def mount_ui(app: FastAPI, get_container: Callable[[], Any]) -> FastAPI:
    """Add /login, /logout and the Gradio app at /ui. ``get_container()`` returns the
    running container (it exists only once the app has started)."""
    import gradio as gr

    from ui.web import build_ui, css

    login_csp()  # reads the log-in page now: a broken install fails here, not on a visit
    app.include_router(router)

    def user_of(request: Request) -> str | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            return get_container().identity.authenticate(session=token).user_id  # type: ignore[no-any-return]
        except LanternError:
            return None

    blocks = build_ui(*handlers(get_container))
    # The machine's own fonts, with a CJK fallback so Chinese answers render; nothing
    # is fetched from font CDNs (tests/integration/test_ui.py checks no other host).
    fonts = [
        "system-ui",
        "-apple-system",
        "Segoe UI",
        "Noto Sans",
        "Noto Sans CJK SC",
        "sans-serif",
    ]
    theme = gr.themes.Default(font=fonts, font_mono=["ui-monospace", "monospace"])
    app = gr.mount_gradio_app(
        app, blocks, path=UI_PATH, auth_dependency=user_of, css=css(), theme=theme, footer_links=[]
    )
    app.add_middleware(LoginRedirect)
    return app


def handlers(get_container: Callable[[], Any]) -> tuple[ChatUI, AdminUI]:
    """The UI's handler classes on the running container's services."""
    from ui.web import AdminUI, ChatUI, ModelsUI, StatusUI

    def service(name: str) -> Any:
        return _Lazy(lambda: getattr(get_container(), name))

    identity, library = service("identity"), service("library")
    chat = ChatUI(
        identity=identity, chats=service("chats"), library=library, search=service("search")
    )
    admin = AdminUI(
        identity=identity,
        library=library,
        status=StatusUI(identity=identity, status=service("status")),
        models=ModelsUI(
            identity=identity,
            registry=service("model_registry"),
            compare=service("model_compare"),
            library=library,
        ),
    )
    return chat, admin


class _Lazy:
    """A service of the container, looked up on each use (the UI is built before the
    app starts, and so before the container exists)."""

    def __init__(self, get: Callable[[], Any]) -> None:
        self._get = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


class LoginRedirect:
    """Send a browser without a session to the log-in page instead of a bare 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] in (UI_PATH, UI_PATH + "/")
        ):
            request = Request(scope)
            if not request.cookies.get(SESSION_COOKIE) or _invalid(scope, request):
                await RedirectResponse(f"/login?next={UI_PATH}/", status_code=303)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


def _invalid(scope: Scope, request: Request) -> bool:
    app = scope.get("app")
    container = getattr(getattr(app, "state", None), "container", None)
    if container is None:
        return False
    try:
        container.identity.authenticate(session=request.cookies.get(SESSION_COOKIE, ""))
    except LanternError:
        return True
    return False
