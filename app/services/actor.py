"""Who acts: the principal, how they came (session, API key, CLI) and from where.

Every service method that changes or reveals data takes an ``Actor`` first: it
checks the principal's access, and its audit record names who, how and from
which address. Entry points build one from the request or the command line; they
never write the audit record themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import PermissionDenied, Unauthorized
from app.services.auth import Principal

#: How an actor came: a browser session, an API key, the command line, or Lantern itself.
VIAS = ("session", "api_key", "cli", "system")
#: Who may act without logging in: whoever runs the command line on the server (they
#: hold the database and the data dir anyway), and Lantern itself.
TRUSTED = ("cli", "system")


@dataclass(frozen=True)
class Actor:
    principal: Principal | None
    via: str
    ip: str | None = None

    @classmethod
    def of(cls, principal: Principal, *, ip: str | None = None) -> Actor:
        """The actor for an authenticated principal (``via`` is how it authenticated)."""
        return cls(principal, principal.via, ip)

    @classmethod
    def anonymous(cls, *, via: str, ip: str | None = None) -> Actor:
        """Someone not yet authenticated (a log-in attempt)."""
        return cls(None, via, ip)

    @classmethod
    def system(cls) -> Actor:
        """Lantern itself (start-up, recovery, scheduled work)."""
        return cls(None, "system")

    @classmethod
    def cli(cls) -> Actor:
        """The operator at the server's command line: an admin who needs no log-in."""
        return cls(None, "cli")

    @property
    def user_id(self) -> str | None:
        return self.principal.user_id if self.principal else None

    @property
    def is_admin(self) -> bool:
        if self.principal is None:
            return self.via in TRUSTED
        return self.principal.is_admin

    def require(self) -> Principal:
        """The principal, or ``Unauthorized`` when nobody is logged in."""
        if self.principal is None:
            raise Unauthorized("log in, or send an API key as 'Authorization: Bearer <key>'")
        return self.principal

    def require_admin(self) -> None:
        """``PermissionDenied`` unless an admin acts (or the trusted command line)."""
        if self.principal is None and self.via not in TRUSTED:
            self.require()
        if not self.is_admin:
            raise PermissionDenied("this needs an admin")
