"""The registry of fine-tuned model versions, as admins see it: register a training run,
promote it after its gate passed, give a candidate an A/B share, roll back, retire.

Every method takes the ``Actor`` first, needs an admin and writes its audit record
with the real outcome. A version goes to the model server (``Deployer``) *before* its
status says it serves, so a failed deploy changes nothing; a version that stops serving
is taken off the server after its status says so. ``serving()`` is what the answer
path's router reads: the active version and the candidates with a share.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import case, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.model_versions import ModelVersion, VersionStatus
from app.errors import Conflict, DeployFailed, InvalidInput, NotFound
from app.services.actor import Actor
from app.services.audit import AuditDraft, AuditLog
from app.services.model_runs import check_name, default_name, read_outputs, read_run
from llm.errors import LLMBackendError

log = logging.getLogger(__name__)

TARGET = "model_version"


@dataclass(frozen=True)
class ServedVersion:
    """A version the answer path may use: what it was trained on (who may get it),
    its A/B share and where its weights are."""

    name: str
    #: ``active`` or ``candidate`` (``serving()``); any status when handed to a deployer.
    status: str
    collection_ids: tuple[str, ...]
    traffic_share: float
    adapter_path: str
    gguf_path: str | None
    base_model: str

    @classmethod
    def of(cls, v: ModelVersion) -> ServedVersion:
        return cls(
            name=v.name,
            status=v.status,
            collection_ids=tuple(v.collection_ids or ()),
            traffic_share=float(v.traffic_share or 0.0),
            adapter_path=v.adapter_path,
            gguf_path=v.gguf_path,
            base_model=v.base_model,
        )


@dataclass(frozen=True)
class Rollback:
    #: The version that was active.
    retired: ModelVersion
    #: The version active again (None: the base model answers).
    active: ModelVersion | None


class Deployer(Protocol):
    """Puts a version on the model server the chat backend talks to, and takes it off.
    Raises ``Conflict`` when the backend cannot serve that version at all, and an
    ``LLMBackendError`` when the server failed; both idempotent."""

    def deploy(self, version: ServedVersion) -> None: ...

    def undeploy(self, version: ServedVersion) -> None: ...


class ModelRegistryService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        deployer: Callable[[], Deployer],
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._deployer = deployer
        # Status changes of this process one at a time (at most one active version).
        self._lock = threading.RLock()

    # -- reading -----------------------------------------------------------------------

    def list(self, actor: Actor) -> builtins.list[ModelVersion]:
        """Every version: the active one, then candidates, then retired; newest first."""
        with self._audit.event("model.list", actor, target_type=TARGET, only_refusals=True):
            actor.require_admin()
        order = case(
            (ModelVersion.status == VersionStatus.ACTIVE, 0),
            (ModelVersion.status == VersionStatus.CANDIDATE, 1),
            else_=2,
        )
        stmt = select(ModelVersion).order_by(order, ModelVersion.created_at.desc())
        with self._sessions() as s:
            return builtins.list(s.scalars(stmt))

    def get(self, actor: Actor, name: str) -> ModelVersion:
        with self._audit.event(
            "model.get", actor, target_type=TARGET, details={"name": name}, only_refusals=True
        ):
            actor.require_admin()
            return self._get(name)

    def serving(self) -> builtins.list[ServedVersion]:
        """The active version (if any) first, then the candidates with an A/B share."""
        stmt = select(ModelVersion).where(
            (ModelVersion.status == VersionStatus.ACTIVE)
            | ((ModelVersion.status == VersionStatus.CANDIDATE) & (ModelVersion.traffic_share > 0))
        )
        with self._sessions() as s:
            rows = builtins.list(s.scalars(stmt))
        rows.sort(key=lambda v: (v.status != VersionStatus.ACTIVE, v.name))
        return [ServedVersion.of(v) for v in rows]

    # -- changes -----------------------------------------------------------------------

    def register(
        self,
        actor: Actor,
        run_dir: str | Path,
        name: str | None = None,
        *,
        quant: str | None = None,
    ) -> ModelVersion:
        """Record a finished training run as a candidate (serving nobody yet). ``name``
        defaults to ``<base>-<yyyymmdd-hhmm>``; ``quant`` picks one of its GGUF exports."""
        with self._audit.event(
            "model.register", actor, target_type=TARGET, details={"run_dir": str(run_dir)}
        ) as ev:
            actor.require_admin()
            record = read_run(run_dir, quant=quant)
            out = record.outputs
            with self._lock, self._sessions.begin() as s:
                if name is not None:
                    name = check_name(name)
                    if self._find(s, name) is not None:
                        raise Conflict(f"a version named {name} exists: choose another --name")
                else:
                    name = self._free_name(s, default_name(record))
                same = s.scalar(
                    select(ModelVersion).where(ModelVersion.adapter_sha256 == record.adapter_sha256)
                )
                if same is not None:
                    raise Conflict(f"this run's adapter is already registered as {same.name}")
                v = ModelVersion(
                    name=name,
                    base_model=record.base_model,
                    run_dir=record.run_dir,
                    adapter_path=record.adapter_path,
                    adapter_sha256=record.adapter_sha256,
                    gguf_path=out.gguf_path,
                    gguf_sha256=out.gguf_sha256,
                    dataset_hash=record.dataset_hash,
                    collection_ids=record.collection_ids,
                    metrics={
                        "gate": out.gate,
                        "run": record.run,
                        "gguf_quant": out.gguf_quant,
                        "gguf_files": out.gguf_files,
                    },
                    status=VersionStatus.CANDIDATE,
                    created_by=actor.user_id,
                )
                s.add(v)
                s.flush()
            ev.target_id = v.id
            ev.details.update(
                name=v.name,
                gate_passed=None if out.gate is None else out.gate["passed"],
                collections=len(record.collection_ids),
            )
            return v

    def promote(self, actor: Actor, name: str, *, force: bool = False) -> ModelVersion:
        """Make ``name`` the active version: it must have passed its evaluation gate
        (``force`` skips that, and the audit says so). The one active before is retired
        and remembered for rollback. It is deployed first; if that fails nothing changes."""
        with (
            self._lock,
            self._audit.event(
                "model.promote",
                actor,
                target_type=TARGET,
                details={"name": name, "force": force},
            ) as ev,
        ):
            actor.require_admin()
            v = self._get(name)
            ev.target_id = v.id
            if v.status == VersionStatus.ACTIVE:
                raise Conflict(f"{name} is already the active version")
            v = self._refresh(v, ev)
            self._check_gate(v, force, ev)
            self._deploy(v)
            with self._sessions.begin() as s:
                old = s.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
                row = s.get_one(ModelVersion, v.id)
                if old is not None:
                    old.status, old.traffic_share = VersionStatus.RETIRED, 0.0
                row.previous_active = old.name if old is not None else None
                row.status, row.traffic_share = VersionStatus.ACTIVE, 0.0
            ev.details["previous_active"] = row.previous_active
            if old is not None:
                self._undeploy(old, ev)
            return row

    def rollback(self, actor: Actor) -> Rollback:
        """Retire the active version and bring back the one active before it (or the base
        model when there was none). Rolling back again goes one further back."""
        with (
            self._lock,
            self._audit.event("model.rollback", actor, target_type=TARGET) as ev,
        ):
            actor.require_admin()
            with self._sessions() as s:
                active = s.scalar(select(ModelVersion).where(ModelVersion.status == "active"))
                back = self._find(s, active.previous_active) if active else None
            if active is None:
                raise Conflict("no version is active: the base model already answers")
            ev.target_id = active.id
            ev.details["from"] = active.name
            if active.previous_active and back is None:
                ev.details["previous_missing"] = active.previous_active
            if back is not None:
                self._deploy(back)
            with self._sessions.begin() as s:
                row = s.get_one(ModelVersion, active.id)
                row.status, row.traffic_share = VersionStatus.RETIRED, 0.0
                restored = s.get_one(ModelVersion, back.id) if back is not None else None
                if restored is not None:
                    restored.status, restored.traffic_share = VersionStatus.ACTIVE, 0.0
            ev.details["to"] = restored.name if restored is not None else None
            self._undeploy(row, ev)
            return Rollback(retired=row, active=restored)

    def retire(self, actor: Actor, name: str) -> ModelVersion:
        """Stop serving ``name`` (an active one leaves the base model answering; `rollback`
        brings back the previous version instead) and take it off the model server."""
        with (
            self._lock,
            self._audit.event(
                "model.retire", actor, target_type=TARGET, details={"name": name}
            ) as ev,
        ):
            actor.require_admin()
            v = self._get(name)
            ev.target_id = v.id
            if v.status == VersionStatus.RETIRED:
                raise Conflict(f"{name} is already retired")
            ev.details["was"] = v.status
            row = self._set_status(v.id, VersionStatus.RETIRED)
            self._undeploy(row, ev)
            return row

    def set_share(self, actor: Actor, name: str, share: float) -> ModelVersion:
        """Give candidate ``name`` the fraction ``share`` (0..1) of users in an A/B test
        (sticky by user id; 0 ends its test). Candidates' shares add up to at most 1."""
        with (
            self._lock,
            self._audit.event(
                "model.share", actor, target_type=TARGET, details={"name": name, "share": share}
            ) as ev,
        ):
            actor.require_admin()
            if not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
                raise InvalidInput(f"share must be a fraction of users from 0 to 1, not {share}")
            share = float(share)
            v = self._get(name)
            ev.target_id = v.id
            if v.status != VersionStatus.CANDIDATE:
                raise Conflict(
                    f"{name} is {v.status}: only a candidate gets an A/B share "
                    "(the active version answers everyone else)"
                )
            with self._sessions() as s:
                others = sum(
                    c.traffic_share
                    for c in s.scalars(
                        select(ModelVersion).where(
                            ModelVersion.status == VersionStatus.CANDIDATE,
                            ModelVersion.id != v.id,
                        )
                    )
                )
            if others + share > 1.0 + 1e-9:
                raise Conflict(
                    f"the candidates' shares would add up to {others + share:g}, over 1: "
                    f"lower another candidate's share first (they hold {others:g})"
                )
            ev.details["from"] = v.traffic_share
            if share > 0 and v.traffic_share == 0:
                v = self._refresh(v, ev)
                self._deploy(v)
            with self._sessions.begin() as s:
                row = s.get_one(ModelVersion, v.id)
                row.traffic_share = share
            if share == 0 and v.traffic_share > 0:
                self._undeploy(row, ev)
            return row

    def rollback_candidate(self, name: str, reason: str) -> bool:
        """Lantern's own rollback of a candidate in an A/B test (its error rate passed the
        threshold): share 0, retired, taken off the server, audited as the system. False
        when ``name`` is not a candidate (nothing to do)."""
        actor = Actor.system()
        with (
            self._lock,
            self._audit.event(
                "model.auto_rollback",
                actor,
                target_type=TARGET,
                details={"name": name, "reason": reason[:500]},
            ) as ev,
        ):
            with self._sessions() as s:
                v = self._find(s, name)
            if v is None or v.status != VersionStatus.CANDIDATE:
                ev.outcome = "skipped"
                return False
            ev.target_id = v.id
            row = self._set_status(v.id, VersionStatus.RETIRED)
            log.warning("model version %s rolled back automatically: %s", name, reason)
            self._undeploy(row, ev)
            return True

    # -- rules -------------------------------------------------------------------------

    def _check_gate(self, v: ModelVersion, force: bool, ev: AuditDraft) -> None:
        gate: dict[str, Any] | None = (v.metrics or {}).get("gate")
        passed = bool(gate and gate.get("passed"))
        reasons = [str(r) for r in (gate or {}).get("reasons") or ()]
        ev.details["gate_passed"] = None if gate is None else passed
        if passed:
            return
        if force:
            ev.details["forced_past_gate"] = True
            ev.details["gate_reasons"] = reasons[:20]
            return
        if gate is None:
            raise Conflict(
                f"{v.name} has not been evaluated: run `lantern finetune eval {v.run_dir}` "
                "(promote reads its eval.json), or promote with --force"
            )
        why = "; ".join(reasons) or "no reasons given"
        raise Conflict(
            f"{v.name} failed its evaluation gate ({why}); promote with --force to overrule"
        )

    def _refresh(self, v: ModelVersion, ev: AuditDraft) -> ModelVersion:
        """Take in the gate report and GGUF export the run folder holds now: both may have
        been written after registration."""
        if not Path(v.run_dir).is_dir():
            return v
        metrics = dict(v.metrics or {})
        quant = metrics.get("gguf_quant")
        out = read_outputs(v.run_dir)
        if quant and quant != out.gguf_quant and quant in out.gguf_files:
            out = read_outputs(v.run_dir, quant=quant)  # keep the export chosen at register
        new = {
            "gate": out.gate,
            "gguf_quant": out.gguf_quant,
            "gguf_files": out.gguf_files,
        }
        changed = [k for k, value in new.items() if metrics.get(k) != value]
        if out.gguf_path != v.gguf_path:
            changed.append("gguf_path")
        if not changed:
            return v
        ev.details["refreshed"] = sorted(set(changed))
        with self._sessions.begin() as s:
            row = s.get_one(ModelVersion, v.id)
            row.metrics = {**metrics, **new}
            row.gguf_path, row.gguf_sha256 = out.gguf_path, out.gguf_sha256
        return row

    def _deploy(self, v: ModelVersion) -> None:
        try:
            self._deployer().deploy(ServedVersion.of(v))
        except LLMBackendError as e:
            raise DeployFailed(f"could not deploy {v.name}: {e}") from e

    def _undeploy(self, v: ModelVersion, ev: AuditDraft) -> None:
        """Take ``v`` off the model server. Its status already says it serves nobody, so
        a failure is logged and audited, not raised: the router no longer sends it users."""
        try:
            self._deployer().undeploy(ServedVersion.of(v))
        except Exception as e:
            log.warning("could not take %s off the model server: %s", v.name, e)
            ev.details["undeploy_error"] = str(e)[:300]

    def _set_status(self, version_id: str, status: str) -> ModelVersion:
        with self._sessions.begin() as s:
            row = s.get_one(ModelVersion, version_id)
            row.status, row.traffic_share = status, 0.0
        return row

    def _get(self, name: str) -> ModelVersion:
        with self._sessions() as s:
            v = self._find(s, name)
        if v is None:
            raise NotFound(f"no model version {name!r} (`lantern models list` shows them)")
        return v

    @staticmethod
    def _find(s: Session, name: str | None) -> ModelVersion | None:
        if not name:
            return None
        return s.scalar(select(ModelVersion).where(ModelVersion.name == name))

    def _free_name(self, s: Session, stem: str) -> str:
        name, n = stem, 1
        while self._find(s, name) is not None:
            n += 1
            name = f"{stem}-{n}"
        return name
