"""Log-in, log-out, the caller's identity and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.deps import SESSION_COOKIE, ContainerDep, CurrentUser, client_ip
from app.api.schemas import ApiKeyIn, ApiKeyOut, LoginIn, MeOut, NewApiKeyOut
from app.errors import NotFound, PermissionDenied, TooManyRequests, Unauthorized
from app.services.auth import Principal

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=MeOut)
def login(body: LoginIn, request: Request, response: Response, c: ContainerDep) -> MeOut:
    """Log in with e-mail and password; sets the session cookie browsers use.

    Failed log-ins are limited per account and per address (429 with Retry-After)."""
    ip = client_ip(request)
    denied = {"email_domain": body.email.rpartition("@")[2][:100]}
    try:
        c.login_throttle.check(body.email, ip)
    except TooManyRequests:
        c.audit.record("login", outcome="throttled", ip=ip, via="session", details=denied)
        raise
    try:
        user = c.auth.authenticate(body.email, body.password)
    except Unauthorized:
        c.login_throttle.failed(body.email, ip)
        c.audit.record("login", outcome="denied", ip=ip, via="session", details=denied)
        raise
    c.login_throttle.succeeded(body.email, ip)
    token = c.auth.start_session(user)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(c.settings.server.session_hours * 3600),
        httponly=True,
        secure=c.settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    who = c.auth.principal_for(user, via="session")
    c.audit.record("login", who, target_type="user", target_id=user.id, ip=ip)
    return me_of(who)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, c: ContainerDep) -> None:
    """End the browser session."""
    if token := request.cookies.get(SESSION_COOKIE):
        c.auth.end_session(token)
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
def list_keys(who: CurrentUser, c: ContainerDep, all_users: bool = False) -> list[ApiKeyOut]:
    """The caller's API keys (admins: everyone's, with ``all_users=true``)."""
    if all_users and not who.is_admin:
        raise PermissionDenied("listing everyone's keys needs an admin")
    rows = c.auth.list_api_keys(None if all_users else who.user_id)
    return [ApiKeyOut.model_validate(r) for r in rows]


@router.post("/api-keys", response_model=NewApiKeyOut, status_code=201, tags=["api keys"])
def create_key(body: ApiKeyIn, request: Request, who: CurrentUser, c: ContainerDep) -> NewApiKeyOut:
    """Create an API key that acts as its user. The key is in this response only."""
    owner = body.user_id or who.user_id
    if owner != who.user_id and not who.is_admin:
        raise PermissionDenied("creating keys for other users needs an admin")
    new = c.auth.create_api_key(owner, body.name)
    c.audit.record(
        "api_key.create",
        who,
        target_type="api_key",
        target_id=new.id,
        ip=client_ip(request),
        details={"owner": owner, "name": new.name},
    )
    return NewApiKeyOut(id=new.id, name=new.name, prefix=new.prefix, key=new.key)


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api keys"])
def revoke_key(key_id: str, request: Request, who: CurrentUser, c: ContainerDep) -> None:
    """Revoke a key at once. Admins may revoke anyone's."""
    row = c.auth.get_api_key(key_id)
    if row.user_id != who.user_id and not who.is_admin:
        raise NotFound(f"no API key {key_id}")
    c.auth.revoke_api_key(key_id)
    c.audit.record(
        "api_key.revoke", who, target_type="api_key", target_id=key_id, ip=client_ip(request)
    )
