"""Admin endpoints: users, groups and the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import AdminUser, ContainerDep, client_ip
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
def list_users(who: AdminUser, c: ContainerDep) -> list[UserOut]:
    """Every user."""
    return [UserOut.model_validate(u) for u in c.auth.list_users()]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, request: Request, who: AdminUser, c: ContainerDep) -> UserOut:
    """Create a user (admin or member)."""
    user = c.auth.create_user(body.email, name=body.name, password=body.password, role=body.role)
    c.audit.record(
        "user.create",
        who,
        target_type="user",
        target_id=user.id,
        ip=client_ip(request),
        details={"role": user.role},
    )
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: str, body: UserPatch, request: Request, who: AdminUser, c: ContainerDep
) -> UserOut:
    """Rename, change the role, (de)activate or set a new password. Deactivating or a
    new password ends the user's browser sessions."""
    user = c.auth.update_user(
        user_id, name=body.name, role=body.role, is_active=body.is_active, password=body.password
    )
    changed = sorted(k for k, v in body.model_dump().items() if v is not None)
    c.audit.record(
        "user.update",
        who,
        target_type="user",
        target_id=user_id,
        ip=client_ip(request),
        details={"changed": changed, "role": user.role, "active": user.is_active},
    )
    return UserOut.model_validate(user)


@router.get("/groups", response_model=list[GroupOut])
def list_groups(who: AdminUser, c: ContainerDep) -> list[GroupOut]:
    """Every group with its members."""
    return [GroupOut(id=g.id, name=g.name, member_ids=m) for g, m in c.access.list_groups()]


@router.post("/groups", response_model=GroupOut, status_code=201)
def create_group(body: GroupIn, request: Request, who: AdminUser, c: ContainerDep) -> GroupOut:
    """Create a group."""
    group = c.access.create_group(body.name)
    c.audit.record(
        "group.create", who, target_type="group", target_id=group.id, ip=client_ip(request)
    )
    return GroupOut(id=group.id, name=group.name, member_ids=[])


@router.put("/groups/{group_id}/members", response_model=GroupOut)
def set_members(
    group_id: str, body: MembersIn, request: Request, who: AdminUser, c: ContainerDep
) -> GroupOut:
    """Replace the group's members."""
    members = c.access.set_members(group_id, body.user_ids)
    group = c.access.get_group(group_id)
    c.audit.record(
        "group.members",
        who,
        target_type="group",
        target_id=group_id,
        ip=client_ip(request),
        details={"members": len(members)},
    )
    return GroupOut(id=group.id, name=group.name, member_ids=members)


@router.delete("/groups/{group_id}", status_code=204)
def delete_group(group_id: str, request: Request, who: AdminUser, c: ContainerDep) -> None:
    """Delete a group and the access it granted."""
    c.access.delete_group(group_id)
    c.audit.record(
        "group.delete", who, target_type="group", target_id=group_id, ip=client_ip(request)
    )


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    who: AdminUser,
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
    return [AuditOut.model_validate(e) for e in c.audit.query(q)]
