"""Admin endpoints of the model registry: versions, promotion, A/B share, rollback.

Registering a training run reads files on the server, so it is done at the server's
command line (`lantern models register RUN`), not over HTTP. There is no
``GET /admin/models/{name}``: it would claim ``/admin/models/rollback`` for GET too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.api.deps import ContainerDep, CurrentActor
from app.api.model_schemas import ModelVersionOut, RollbackOut, ShareIn
from app.api.schemas import ErrorOut

router = APIRouter(prefix="/admin/models", tags=["models"])

#: Routes that deploy to the model server can fail there.
DEPLOYS: dict[int | str, dict[str, Any]] = {
    502: {
        "model": ErrorOut,
        "description": "The model server (vLLM) would not take the version; nothing changed.",
    }
}


@router.get("", response_model=list[ModelVersionOut])
def list_versions(who: CurrentActor, c: ContainerDep) -> list[ModelVersionOut]:
    """Every model version: the active one, then candidates, then retired ones, with
    their gate reports and training numbers (admins)."""
    return [ModelVersionOut.model_validate(v) for v in c.model_registry.list(who)]


@router.post("/rollback", response_model=RollbackOut, responses=DEPLOYS)
def rollback(who: CurrentActor, c: ContainerDep) -> RollbackOut:
    """Retire the active version and bring back the one active before it (or the base
    model when there was none). 409 when no version is active."""
    done = c.model_registry.rollback(who)
    active = done.active
    return RollbackOut(
        active=ModelVersionOut.model_validate(active) if active is not None else None,
        retired=ModelVersionOut.model_validate(done.retired),
    )


@router.post("/{name}/promote", response_model=ModelVersionOut, responses=DEPLOYS)
def promote(
    name: str,
    who: CurrentActor,
    c: ContainerDep,
    force: bool = Query(
        default=False, description="Promote although the evaluation gate failed (audited)."
    ),
) -> ModelVersionOut:
    """Make the version the active one: deployed to the model server first, then serving
    every user who may read all of its training collections. 409 when its evaluation gate
    has not passed (unless `force`), or the chat backend cannot serve it."""
    return ModelVersionOut.model_validate(c.model_registry.promote(who, name, force=force))


@router.post("/{name}/retire", response_model=ModelVersionOut)
def retire(name: str, who: CurrentActor, c: ContainerDep) -> ModelVersionOut:
    """Stop serving the version and take it off the model server."""
    return ModelVersionOut.model_validate(c.model_registry.retire(who, name))


@router.put("/{name}/share", response_model=ModelVersionOut, responses=DEPLOYS)
def set_share(name: str, body: ShareIn, who: CurrentActor, c: ContainerDep) -> ModelVersionOut:
    """Give a candidate a share of users in an A/B test (0 ends it). 409 for a version
    that is not a candidate, or when the candidates' shares would pass 1."""
    return ModelVersionOut.model_validate(c.model_registry.set_share(who, name, body.share))
