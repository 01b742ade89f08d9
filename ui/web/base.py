"""What every UI handler class shares: who calls, and refusals shown as the services word them.

Every handler resolves the caller from the session cookie and goes through the
same permission checks as the REST API: hiding the admin tab is cosmetics, the
admin check in each admin handler is the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import gradio as gr

from app.api.deps import SESSION_COOKIE
from app.errors import LanternError
from app.services.actor import Actor
from app.services.auth import Principal
from app.services.identity import IdentityService

T = TypeVar("T")


class Handlers:
    """Handlers that need to know who calls (from the request's session cookie)."""

    def __init__(self, identity: IdentityService) -> None:
        self.identity = identity

    def _caller(self, request: gr.Request | None) -> tuple[Principal, Actor]:
        """The signed-in principal and the actor services take, or a message to sign in."""
        token = request.cookies.get(SESSION_COOKIE) if request else None
        if not token:
            raise gr.Error("Your session has ended: sign in again.")
        with refused():
            who = self.identity.authenticate(session=token)
        client = getattr(request, "client", None)
        return who, Actor.of(who, ip=getattr(client, "host", None))

    def _admin(self, request: gr.Request | None) -> tuple[Principal, Actor]:
        """As ``_caller``, refused unless the caller is an admin (for what only admins
        see; what changes data is refused, and audited, by the services)."""
        who, actor = self._caller(request)
        if not who.is_admin:
            raise gr.Error("This needs an admin.")
        return who, actor


@contextmanager
def refused() -> Iterator[None]:
    """A refusal from the services (bad input, a missing chat), shown as they word it."""
    try:
        yield
    except LanternError as e:
        raise gr.Error(str(e)) from None


def shown(events: Iterator[T]) -> Iterator[T]:
    """``events``, with a refusal from the services shown to the user."""
    with refused():
        yield from events


def row_of(data: gr.EventData) -> int:
    """The message index of a chatbot like/select event."""
    index: Any = getattr(data, "index", -1)
    return index if isinstance(index, int) else int(index[0])
