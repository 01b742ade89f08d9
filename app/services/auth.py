"""Identity: users, passwords (Argon2id), browser sessions and API keys.

Session tokens and API keys are random (256 bits) and stored only as SHA-256
hashes, so a copy of the database cannot be used to log in. A key is shown once,
when it is created.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pwdlib import PasswordHash
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.db.identity import ApiKey, AuthSession, GroupMember, Role, User
from app.errors import Conflict, InvalidInput, NotFound, Unauthorized

log = logging.getLogger(__name__)

KEY_PREFIX = "lk_"
MIN_PASSWORD_CHARS = 10


@dataclass(frozen=True)
class Principal:
    """Who is asking, and how they authenticated (``session``, ``api_key`` or ``cli``)."""

    user_id: str
    email: str
    name: str
    role: str
    via: str
    group_ids: frozenset[str] = frozenset()
    api_key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True)
class NewApiKey:
    id: str
    name: str
    prefix: str
    #: The key itself: shown once, never stored.
    key: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(at: datetime) -> datetime:
    # SQLite returns naive datetimes; everything Lantern stores is UTC.
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class AuthService:
    def __init__(self, sessions: sessionmaker[Session], *, session_hours: float = 12) -> None:
        self.sessions = sessions
        self.session_hours = session_hours
        self._hasher = PasswordHash.recommended()
        # Verifying against this when the user does not exist takes as long as a real
        # check, so log-in time does not tell which e-mail addresses have accounts.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # -- users -------------------------------------------------------------------

    def create_user(
        self, email: str, *, name: str = "", password: str | None = None, role: str = Role.MEMBER
    ) -> User:
        email = normalise_email(email)
        if role not in Role.ALL:
            raise InvalidInput(f"role must be one of {', '.join(Role.ALL)}")
        if password is not None:
            check_password_strength(password)
        with self.sessions.begin() as s:
            if s.scalar(select(User.id).where(User.email == email)):
                raise Conflict(f"a user with e-mail {email} already exists")
            user = User(
                email=email,
                name=name.strip() or email.split("@")[0],
                password_hash=self._hasher.hash(password) if password else None,
                role=role,
            )
            s.add(user)
        return user

    def ensure_admin(self, email: str, password: str, *, name: str = "Admin") -> tuple[User, bool]:
        """The admin with ``email``, created with ``password`` if missing; True if created."""
        with self.sessions() as s:
            existing = s.scalar(select(User).where(User.email == normalise_email(email)))
        if existing is not None:
            return existing, False
        return self.create_user(email, name=name, password=password, role=Role.ADMIN), True

    def get_user(self, user_id: str) -> User:
        with self.sessions() as s:
            user = s.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    def user_by_email(self, email: str) -> User:
        with self.sessions() as s:
            user = s.scalar(select(User).where(User.email == normalise_email(email)))
        if user is None:
            raise NotFound(f"no user with e-mail {email.strip()}")
        return user

    def list_users(self) -> list[User]:
        with self.sessions() as s:
            return list(s.scalars(select(User).order_by(User.email)))

    def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: str | None = None,
        is_active: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Change what is given. Refused (``Conflict``) when it would leave no active
        admin: then nobody could administer Lantern, and no new admin be created."""
        if role is not None and role not in Role.ALL:
            raise InvalidInput(f"role must be one of {', '.join(Role.ALL)}")
        if password is not None:
            check_password_strength(password)
        with self.sessions.begin() as s:
            # Lock the active admins first (PostgreSQL), so that two admins demoting each
            # other at once cannot both see the other one remaining.
            s.execute(
                select(User.id)
                .where(User.role == Role.ADMIN, User.is_active.is_(True))
                .with_for_update()
            ).all()
            user = s.get(User, user_id)
            if user is None:
                raise NotFound(f"no user {user_id}")
            was_admin = user.role == Role.ADMIN and user.is_active
            if name is not None:
                user.name = name.strip()
            if role is not None:
                user.role = role
            if is_active is not None:
                user.is_active = is_active
            if password is not None:
                user.password_hash = self._hasher.hash(password)
            if was_admin and not (user.role == Role.ADMIN and user.is_active):
                s.flush()  # SQLite: the first write takes the lock, so the count is current
                if not _active_admins(s):
                    raise Conflict(
                        f"{user.email} is the last active admin; make another user an admin "
                        "first (or run `lantern users promote EMAIL`)"
                    )
            if is_active is False or password is not None:
                s.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
        return user

    # -- passwords and browser sessions ------------------------------------------

    def authenticate(self, email: str, password: str) -> User:
        """The active user with this e-mail and password, else ``Unauthorized``."""
        try:
            email = normalise_email(email)
        except InvalidInput:
            email = ""  # not an address: no such user, refused the same way
        if storable.problem(password):
            # No account has it (passwords are checked when set), and a lone surrogate
            # cannot even be hashed: refused like any wrong password, taking as long.
            email, password = "", "unusable password"
        with self.sessions() as s:
            user = s.scalar(select(User).where(User.email == email)) if email else None
        if user is None or not user.password_hash:
            self._hasher.verify(password, self._dummy_hash)
            raise Unauthorized("wrong e-mail or password")
        valid, rehash = self._hasher.verify_and_update(password, user.password_hash)
        if not valid or not user.is_active:
            raise Unauthorized("wrong e-mail or password")
        with self.sessions.begin() as s:
            row = s.get(User, user.id)
            assert row is not None
            row.last_login_at = datetime.now(UTC)
            if rehash:
                row.password_hash = rehash
        return user

    def start_session(self, user: User) -> str:
        """A new session token for ``user`` (the cookie value)."""
        token = secrets.token_urlsafe(32)
        with self.sessions.begin() as s:
            s.add(
                AuthSession(
                    token_hash=_hash(token),
                    user_id=user.id,
                    expires_at=datetime.now(UTC) + timedelta(hours=self.session_hours),
                )
            )
        return token

    def end_session(self, token: str) -> None:
        with self.sessions.begin() as s:
            s.execute(delete(AuthSession).where(AuthSession.token_hash == _hash(token)))

    def from_session(self, token: str) -> Principal:
        """The principal behind a session cookie; slides its expiry forward."""
        now = datetime.now(UTC)
        with self.sessions.begin() as s:
            row = s.get(AuthSession, _hash(token))
            if row is None or _aware(row.expires_at) <= now:
                raise Unauthorized("your session has expired; log in again")
            user = s.get(User, row.user_id)
            if user is None or not user.is_active:
                raise Unauthorized("your session has expired; log in again")
            # Slide the expiry, but write at most once a minute per session.
            renewed = now + timedelta(hours=self.session_hours)
            if renewed - _aware(row.expires_at) > timedelta(minutes=1):
                row.expires_at = renewed
            return self._principal(s, user, via="session")

    # -- API keys -------------------------------------------------------------------

    def create_api_key(self, user_id: str, name: str) -> NewApiKey:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.sessions.begin() as s:
            if s.get(User, user_id) is None:
                raise NotFound(f"no user {user_id}")
            row = ApiKey(user_id=user_id, name=name.strip(), prefix=key[:10], key_hash=_hash(key))
            s.add(row)
            s.flush()
            return NewApiKey(id=row.id, name=row.name, prefix=row.prefix, key=key)

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        """Keys of ``user_id`` (every key when None), newest first."""
        query = select(ApiKey).order_by(ApiKey.created_at.desc())
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        with self.sessions() as s:
            return list(s.scalars(query))

    def get_api_key(self, key_id: str) -> ApiKey:
        with self.sessions() as s:
            row = s.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key {key_id}")
        return row

    def revoke_api_key(self, key_id: str) -> ApiKey:
        with self.sessions.begin() as s:
            row = s.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
        return row

    def from_api_key(self, key: str) -> Principal:
        with self.sessions.begin() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(key)))
            if row is None or row.revoked_at is not None:
                raise Unauthorized("invalid or revoked API key")
            user = s.get(User, row.user_id)
            if user is None or not user.is_active:
                raise Unauthorized("invalid or revoked API key")
            now = datetime.now(UTC)
            if row.last_used_at is None or now - _aware(row.last_used_at) > timedelta(minutes=1):
                row.last_used_at = now
            return self._principal(s, user, via="api_key", api_key_id=row.id)

    def principal_for(self, user: User, *, via: str = "cli") -> Principal:
        with self.sessions() as s:
            return self._principal(s, user, via=via)

    def _principal(
        self, s: Session, user: User, *, via: str, api_key_id: str | None = None
    ) -> Principal:
        groups = s.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user.id))
        return Principal(
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            via=via,
            group_ids=frozenset(groups),
            api_key_id=api_key_id,
        )


def _active_admins(s: Session) -> int:
    q = select(func.count()).where(User.role == Role.ADMIN, User.is_active.is_(True))
    return s.scalar(q) or 0


def normalise_email(email: str) -> str:
    storable.check(email=email)
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    return email


def check_password_strength(password: str) -> None:
    """Length is what makes a password strong (NIST SP 800-63B): no composition rules."""
    storable.check(password=password)  # a lone surrogate cannot be hashed; NUL: one rule
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"passwords need at least {MIN_PASSWORD_CHARS} characters")
