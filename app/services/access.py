"""Groups and collection grants: which collections a principal may read or write.

Admins may read and write every collection. Anyone else reaches a collection only
through a grant to one of their groups; ``write`` implies ``read``. Retrieval is
given the readable collection ids and filters inside its searches, so a chunk of
another collection never leaves the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db.identity import Access, CollectionGrant, Group, GroupMember, User
from app.db.models import Collection
from app.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from app.services.auth import Principal


@dataclass(frozen=True)
class Grant:
    group_id: str
    group_name: str
    access: str


class AccessService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # -- what a principal may do -----------------------------------------------------

    def readable(self, who: Principal) -> set[str]:
        """Ids of the collections ``who`` may read."""
        return self._granted(who, Access.ALL)

    def writable(self, who: Principal) -> set[str]:
        """Ids of the collections ``who`` may change (upload, delete, rename)."""
        return self._granted(who, (Access.WRITE,))

    def _granted(self, who: Principal, levels: tuple[str, ...]) -> set[str]:
        with self.sessions() as s:
            if who.is_admin:
                return set(s.scalars(select(Collection.id)))
            if not who.group_ids:
                return set()
            return set(
                s.scalars(
                    select(CollectionGrant.collection_id).where(
                        CollectionGrant.group_id.in_(who.group_ids),
                        CollectionGrant.access.in_(levels),
                    )
                )
            )

    def check_read(self, who: Principal, collection_id: str) -> None:
        """``NotFound`` (not ``PermissionDenied``): a collection one may not read does not
        exist for them, so its name or id leaks nothing."""
        if collection_id not in self.readable(who):
            raise NotFound(f"no collection {collection_id}")

    def check_write(self, who: Principal, collection_id: str) -> None:
        self.check_read(who, collection_id)
        if collection_id not in self.writable(who):
            raise PermissionDenied("you may read this collection but not change it")

    def scope(self, who: Principal, requested: Iterable[str] | None) -> list[str]:
        """The collections a request may search: those asked for (each must be readable),
        or every readable one."""
        allowed = self.readable(who)
        if not requested:
            return sorted(allowed)
        wanted = list(dict.fromkeys(requested))
        for cid in wanted:
            if cid not in allowed:
                raise NotFound(f"no collection {cid}")
        return wanted

    # -- groups ------------------------------------------------------------------------

    def create_group(self, name: str) -> Group:
        name = name.strip()
        if not name:
            raise InvalidInput("group name must not be empty")
        try:
            with self.sessions.begin() as s:
                group = Group(name=name)
                s.add(group)
        except IntegrityError as e:
            raise Conflict(f"a group named {name!r} already exists") from e
        return group

    def ensure_group(self, name: str) -> Group:
        with self.sessions() as s:
            existing = s.scalar(select(Group).where(Group.name == name.strip()))
        return existing or self.create_group(name)

    def list_groups(self) -> list[tuple[Group, list[str]]]:
        """Every group with its members' user ids."""
        with self.sessions() as s:
            groups = list(s.scalars(select(Group).order_by(Group.name)))
            members: dict[str, list[str]] = {g.id: [] for g in groups}
            for gid, uid in s.execute(select(GroupMember.group_id, GroupMember.user_id)):
                members.setdefault(gid, []).append(uid)
        return [(g, sorted(members[g.id])) for g in groups]

    def get_group(self, group_id: str) -> Group:
        with self.sessions() as s:
            group = s.get(Group, group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        return group

    def delete_group(self, group_id: str) -> None:
        with self.sessions.begin() as s:
            group = s.get(Group, group_id)
            if group is None:
                raise NotFound(f"no group {group_id}")
            s.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
            s.execute(delete(CollectionGrant).where(CollectionGrant.group_id == group_id))
            s.delete(group)

    def set_members(self, group_id: str, user_ids: Iterable[str]) -> list[str]:
        """Make ``user_ids`` exactly the group's members."""
        wanted = sorted(set(user_ids))
        with self.sessions.begin() as s:
            if s.get(Group, group_id) is None:
                raise NotFound(f"no group {group_id}")
            known = set(s.scalars(select(User.id).where(User.id.in_(wanted))))
            if missing := [u for u in wanted if u not in known]:
                raise NotFound(f"no user {missing[0]}")
            s.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
            s.add_all(GroupMember(group_id=group_id, user_id=u) for u in wanted)
        return wanted

    def add_member(self, group_id: str, user_id: str) -> None:
        with self.sessions() as s:
            current = set(
                s.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group_id))
            )
        self.set_members(group_id, current | {user_id})

    # -- grants ------------------------------------------------------------------------

    def grants(self, collection_id: str) -> list[Grant]:
        with self.sessions() as s:
            rows = s.execute(
                select(CollectionGrant.group_id, Group.name, CollectionGrant.access)
                .join(Group, Group.id == CollectionGrant.group_id)
                .where(CollectionGrant.collection_id == collection_id)
                .order_by(Group.name)
            ).all()
        return [Grant(gid, name, access) for gid, name, access in rows]

    def set_grants(self, collection_id: str, grants: dict[str, str]) -> list[Grant]:
        """Make ``{group_id: "read" | "write"}`` exactly the collection's grants."""
        for access in grants.values():
            if access not in Access.ALL:
                raise InvalidInput(f"access must be one of {', '.join(Access.ALL)}")
        with self.sessions.begin() as s:
            if s.get(Collection, collection_id) is None:
                raise NotFound(f"no collection {collection_id}")
            known = set(s.scalars(select(Group.id).where(Group.id.in_(list(grants)))))
            if missing := [g for g in grants if g not in known]:
                raise NotFound(f"no group {missing[0]}")
            s.execute(delete(CollectionGrant).where(CollectionGrant.collection_id == collection_id))
            s.add_all(
                CollectionGrant(collection_id=collection_id, group_id=g, access=a)
                for g, a in grants.items()
            )
        return self.grants(collection_id)
