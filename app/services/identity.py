"""Log-in, users, groups, API keys and the audit log, as callers see them: every
method takes the ``Actor``, checks it may, acts and writes the audit record with
the real outcome (a refused log-in, a member trying an admin action).

``AuthService`` and ``AccessService`` below it keep the records and know nothing of
who asks; this is the only layer entry points call for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.db.audit import AuditEvent
from app.db.identity import ApiKey, Group, Role, User
from app.errors import NotFound, PermissionDenied, TooManyRequests, Unauthorized
from app.services.access import AccessService
from app.services.actor import Actor
from app.services.audit import AuditLog, AuditQuery
from app.services.auth import AuthService, NewApiKey, Principal
from app.services.ratelimit import LoginThrottle


@dataclass(frozen=True)
class LoggedIn:
    principal: Principal
    #: The session token (the browser's cookie value).
    token: str


class IdentityService:
    def __init__(
        self,
        *,
        auth: AuthService,
        access: AccessService,
        audit: AuditLog,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._auth = auth
        self._access = access
        self._audit = audit
        self._throttle = throttle

    # -- log-in ------------------------------------------------------------------------

    def log_in(self, actor: Actor, email: str, password: str) -> LoggedIn:
        """A new browser session for the right e-mail and password. Failed attempts are
        limited per account and per address (``TooManyRequests``); the audit record of
        a refused one names the e-mail's domain only."""
        ip = actor.ip
        refused = {"email_domain": email.rpartition("@")[2][:100]}
        if self._throttle is not None:
            try:
                self._throttle.check(email, ip)
            except TooManyRequests:
                self._audit.record("login", actor, outcome="throttled", details=refused)
                raise
        try:
            user = self._auth.authenticate(email, password)
        except Unauthorized:
            if self._throttle is not None:
                self._throttle.failed(email, ip)
            self._audit.record("login", actor, outcome="denied", details=refused)
            raise
        if self._throttle is not None:
            self._throttle.succeeded(email, ip)
        token = self._auth.start_session(user)
        who = self._auth.principal_for(user, via=actor.via)
        self._audit.record("login", Actor.of(who, ip=ip), target_type="user", target_id=user.id)
        return LoggedIn(who, token)

    def log_out(self, token: str) -> None:
        """End a browser session (an unknown token is already ended)."""
        self._auth.end_session(token)

    def authenticate(self, *, session: str | None = None, api_key: str | None = None) -> Principal:
        """The principal behind an API key or a session token, else ``Unauthorized``."""
        if api_key:
            return self._auth.from_api_key(api_key)
        if session:
            return self._auth.from_session(session)
        raise Unauthorized("log in, or send an API key as 'Authorization: Bearer <key>'")

    # -- users -------------------------------------------------------------------------

    def list_users(self, actor: Actor) -> list[User]:
        actor.require_admin()
        return self._auth.list_users()

    def user_by_email(self, actor: Actor, email: str) -> User:
        actor.require_admin()
        return self._auth.user_by_email(email)

    def create_user(
        self,
        actor: Actor,
        email: str,
        *,
        name: str = "",
        password: str | None = None,
        role: str = Role.MEMBER,
    ) -> User:
        """Create a user (admins)."""
        with self._audit.event(
            "user.create", actor, target_type="user", details={"role": role}
        ) as ev:
            actor.require_admin()
            user = self._auth.create_user(email, name=name, password=password, role=role)
            ev.target_id = user.id
            return user

    def ensure_admin(self, actor: Actor, email: str, password: str, *, name: str) -> User | None:
        """Create the first admin; None (nothing changed) when the e-mail is taken."""
        actor.require_admin()
        user, created = self._auth.ensure_admin(email, password, name=name)
        if not created:
            return None
        self._audit.record(
            "user.create", actor, target_type="user", target_id=user.id, details={"role": "admin"}
        )
        return user

    def update_user(
        self,
        actor: Actor,
        user_id: str,
        *,
        name: str | None = None,
        role: str | None = None,
        is_active: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Rename, change the role, (de)activate or set a new password (admins).
        Deactivating or a new password ends the user's browser sessions."""
        with self._audit.event("user.update", actor, target_type="user", target_id=user_id) as ev:
            actor.require_admin()
            before = self._auth.get_user(user_id)
            was = {"name": before.name, "role": before.role, "is_active": before.is_active}
            user = self._auth.update_user(
                user_id, name=name, role=role, is_active=is_active, password=password
            )
            now = {"name": user.name, "role": user.role, "is_active": user.is_active}
            changed = [k for k in was if was[k] != now[k]]
            ev.details.update(
                changed=changed + (["password"] if password is not None else []),
                role=user.role,
                active=user.is_active,
            )
            return user

    # -- API keys ----------------------------------------------------------------------

    def list_api_keys(self, actor: Actor, *, all_users: bool = False) -> list[ApiKey]:
        """The caller's API keys (admins: everyone's, with ``all_users``)."""
        if all_users:
            if not actor.is_admin:
                raise PermissionDenied("listing everyone's keys needs an admin")
            return self._auth.list_api_keys(None)
        return self._auth.list_api_keys(actor.require().user_id)

    def create_api_key(self, actor: Actor, name: str, *, user_id: str | None = None) -> NewApiKey:
        """A key that acts as its user (the caller, or for admins anyone). The key itself
        is in the result only."""
        with self._audit.event("api_key.create", actor, target_type="api_key") as ev:
            owner = user_id or actor.require().user_id
            ev.details.update(owner=owner, name=name.strip())
            if owner != actor.user_id and not actor.is_admin:
                raise PermissionDenied("creating keys for other users needs an admin")
            new = self._auth.create_api_key(owner, name)
            ev.target_id = new.id
            return new

    def revoke_api_key(self, actor: Actor, key_id: str) -> ApiKey:
        """Revoke a key at once: the caller's own, or for admins anyone's."""
        with self._audit.event("api_key.revoke", actor, target_type="api_key", target_id=key_id):
            row = self._auth.get_api_key(key_id)
            if row.user_id != actor.user_id and not actor.is_admin:
                raise NotFound(f"no API key {key_id}")
            return self._auth.revoke_api_key(key_id)

    # -- groups ------------------------------------------------------------------------

    def list_groups(self, actor: Actor) -> list[tuple[Group, list[str]]]:
        """Every group with its members' user ids (admins)."""
        actor.require_admin()
        return self._access.list_groups()

    def create_group(self, actor: Actor, name: str) -> Group:
        with self._audit.event("group.create", actor, target_type="group") as ev:
            actor.require_admin()
            group = self._access.create_group(name)
            ev.target_id = group.id
            return group

    def set_members(
        self, actor: Actor, group_id: str, user_ids: Iterable[str]
    ) -> tuple[Group, list[str]]:
        """Make ``user_ids`` exactly the group's members (admins)."""
        with self._audit.event(
            "group.members", actor, target_type="group", target_id=group_id
        ) as ev:
            actor.require_admin()
            members = self._access.set_members(group_id, user_ids)
            ev.details["members"] = len(members)
            return self._access.get_group(group_id), members

    def add_member(self, actor: Actor, group_id: str, user_id: str) -> list[str]:
        """Add one user to the group (admins)."""
        with self._audit.event(
            "group.members", actor, target_type="group", target_id=group_id
        ) as ev:
            actor.require_admin()
            self._access.add_member(group_id, user_id)
            groups = self._access.list_groups()
            members = next((m for g, m in groups if g.id == group_id), [])
            ev.details.update(added=user_id, members=len(members))
            return members

    def delete_group(self, actor: Actor, group_id: str) -> None:
        """Delete a group and the access it granted (admins)."""
        with self._audit.event("group.delete", actor, target_type="group", target_id=group_id):
            actor.require_admin()
            self._access.delete_group(group_id)

    # -- the audit log -----------------------------------------------------------------

    def audit_events(self, actor: Actor, query: AuditQuery) -> list[AuditEvent]:
        """Audit events, newest first, filtered (admins)."""
        actor.require_admin()
        return self._audit.query(query)
