"""Admin endpoints: users, groups and the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import ContainerDep, CurrentActor
from app.api.schemas import (
    AuditOut,
    GroupIn,
    GroupOut,
    IsoDatetime,
    MembersIn,
    UserIn,
    UserOut,
    UserPatch,
)
from app.services.audit import AuditQuery

router = APIRouter(tags=["admin"])


@router.get("/users", response_model=list[UserOut])
def list_users(who: CurrentActor, c: ContainerDep) -> list[UserOut]:
    """Every user (admins)."""
    return [UserOut.model_validate(u) for u in c.identity.list_users(who)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, who: CurrentActor, c: ContainerDep) -> UserOut:
    """Create a user (admin or member)."""
    user = c.identity.create_user(
        who, body.email, name=body.name, password=body.password, role=body.role
    )
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: str, body: UserPatch, who: CurrentActor, c: ContainerDep) -> UserOut:
    """Rename, change the role, (de)activate or set a new password. Deactivating or a
    new password ends the user's browser sessions."""
    user = c.identity.update_user(
        who,
        user_id,
        name=body.name,
        role=body.role,
        is_active=body.is_active,
        password=body.password,
    )
    return UserOut.model_validate(user)


@router.get("/groups", response_model=list[GroupOut])
def list_groups(who: CurrentActor, c: ContainerDep) -> list[GroupOut]:
    """Every group with its members."""
    return [GroupOut(id=g.id, name=g.name, member_ids=m) for g, m in c.identity.list_groups(who)]


@router.post("/groups", response_model=GroupOut, status_code=201)
def create_group(body: GroupIn, who: CurrentActor, c: ContainerDep) -> GroupOut:
    """Create a group."""
    group = c.identity.create_group(who, body.name)
    return GroupOut(id=group.id, name=group.name, member_ids=[])


@router.put("/groups/{group_id}/members", response_model=GroupOut)
def set_members(group_id: str, body: MembersIn, who: CurrentActor, c: ContainerDep) -> GroupOut:
    """Replace the group's members."""
    group, members = c.identity.set_members(who, group_id, body.user_ids)
    return GroupOut(id=group.id, name=group.name, member_ids=members)


@router.delete("/groups/{group_id}", status_code=204)
def delete_group(group_id: str, who: CurrentActor, c: ContainerDep) -> None:
    """Delete a group and the access it granted."""
    c.identity.delete_group(who, group_id)


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    who: CurrentActor,
    c: ContainerDep,
    actor_id: str | None = None,
    action: str | None = Query(default=None, examples=["login"]),
    target_id: str | None = None,
    outcome: str | None = Query(default=None, examples=["denied"]),
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> list[AuditOut]:
    """Audit events, newest first, filtered."""
    q = AuditQuery(actor_id, action, target_id, outcome, since, until, limit, offset)
    return [AuditOut.model_validate(e) for e in c.identity.audit_events(who, q)]
