"""Request dependencies: the container, and who is calling.

Browsers authenticate with the session cookie set at log-in; tools send an API
key as ``Authorization: Bearer lk_...`` (what the OpenAI client sends) or
``X-API-Key``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from app import storable
from app.container import Container
from app.services.actor import Actor
from app.services.auth import Principal

SESSION_COOKIE = "lantern_session"


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def storable_params(request: Request) -> None:
    """Path and query parameters, like bodies, carry only text every database can
    store (``app.storable``); anything else is a 422 before any route runs."""
    params = [("path", k, v) for k, v in request.path_params.items()]
    params += [("query", k, v) for k, v in request.query_params.multi_items()]
    for where, name, value in params:
        if isinstance(value, str) and (reason := storable.problem(value)):
            raise RequestValidationError(
                [{"type": "unstorable_text", "loc": (where, name), "msg": reason}]
            )


def api_key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def current_principal(request: Request, c: ContainerDep) -> Principal:
    who = c.identity.authenticate(
        api_key=api_key_of(request), session=request.cookies.get(SESSION_COOKIE)
    )
    request.state.principal = who
    c.rate_limiter.hit(who)
    return who


CurrentUser = Annotated[Principal, Depends(current_principal)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_actor(request: Request, who: CurrentUser) -> Actor:
    """The authenticated caller as the services take it: principal, how, from where.
    Admin-only operations are refused (and audited as denied) by the services."""
    return Actor.of(who, ip=client_ip(request))


CurrentActor = Annotated[Actor, Depends(current_actor)]


def anonymous_actor(request: Request) -> Actor:
    """A caller not logged in yet (the log-in form)."""
    return Actor.anonymous(via="session", ip=client_ip(request))


AnonymousActor = Annotated[Actor, Depends(anonymous_actor)]
