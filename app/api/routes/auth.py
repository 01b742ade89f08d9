"""Log-in, log-out, the caller's identity and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.deps import SESSION_COOKIE, AnonymousActor, ContainerDep, CurrentActor, CurrentUser
from app.api.schemas import ApiKeyIn, ApiKeyOut, LoginIn, MeOut, NewApiKeyOut
from app.services.auth import Principal

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=MeOut)
def login(body: LoginIn, response: Response, who: AnonymousActor, c: ContainerDep) -> MeOut:
    """Log in with e-mail and password; sets the session cookie browsers use.

    Failed log-ins are limited per account and per address (429 with Retry-After)."""
    done = c.identity.log_in(who, body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        done.token,
        max_age=int(c.settings.server.session_hours * 3600),
        httponly=True,
        secure=c.settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    return me_of(done.principal)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, c: ContainerDep) -> None:
    """End the browser session."""
    if token := request.cookies.get(SESSION_COOKIE):
        c.identity.log_out(token)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=MeOut)
def me(who: CurrentUser) -> MeOut:
    """Who the caller is: name, role, groups."""
    return me_of(who)


def me_of(who: Principal) -> MeOut:
    return MeOut.model_validate(
        {
            "id": who.user_id,
            "email": who.email,
            "name": who.name,
            "role": who.role,
            "via": who.via,
            "group_ids": sorted(who.group_ids),
        }
    )


@router.get("/api-keys", response_model=list[ApiKeyOut], tags=["api keys"])
def list_keys(who: CurrentActor, c: ContainerDep, all_users: bool = False) -> list[ApiKeyOut]:
    """The caller's API keys (admins: everyone's, with ``all_users=true``)."""
    rows = c.identity.list_api_keys(who, all_users=all_users)
    return [ApiKeyOut.model_validate(r) for r in rows]


@router.post("/api-keys", response_model=NewApiKeyOut, status_code=201, tags=["api keys"])
def create_key(body: ApiKeyIn, who: CurrentActor, c: ContainerDep) -> NewApiKeyOut:
    """Create an API key that acts as its user. The key is in this response only."""
    new = c.identity.create_api_key(who, body.name, user_id=body.user_id)
    return NewApiKeyOut(id=new.id, name=new.name, prefix=new.prefix, key=new.key)


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api keys"])
def revoke_key(key_id: str, who: CurrentActor, c: ContainerDep) -> None:
    """Revoke a key at once. Admins may revoke anyone's."""
    c.identity.revoke_api_key(who, key_id)
