"""The admin console's model versions: the registry's table, promote (past a failed gate
only when asked), roll back, retire, an A/B share, and two versions compared.

Every action goes through ``ModelRegistryService``, which needs an admin and audits the
change with its real outcome; a refusal (gate failed, deploy failed, not a candidate...)
is shown as the service words it. The table only reads what registration and promotion
recorded (``metrics["gate"]`` is the run's eval.json).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from app.db.model_versions import ModelVersion, VersionStatus
from app.services.actor import Actor
from app.services.identity import IdentityService
from app.services.library import LibraryService
from app.services.model_compare import ModelCompareService, VersionStats
from app.services.model_registry import ModelRegistryService
from app.services.model_router import BASE
from ui.web.base import Handlers, refused

HEADERS = [
    "name",
    "status",
    "base model",
    "collections",
    "A/B share",
    "gate",
    "gate metrics (base → candidate)",
    "created",
]
#: The gate metrics the table shows, where a tuned model should gain most first.
KEY_METRICS = (("citation_format", "citation format"), ("answer_recall", "answer recall"))


def gate_summary(gate: Mapping[str, Any] | None) -> str:
    """``passed: <first reason>``, ``failed: <first failing reason>`` or ``not evaluated``."""
    if gate is None:
        return "not evaluated"
    reasons = [str(r) for r in gate.get("reasons") or ()]
    passed = bool(gate.get("passed"))
    if not passed:
        # The gate lists its passing reasons too: show what failed it.
        reasons = [str(r) for r in gate.get("failures") or ()] or reasons
    verdict = "passed" if passed else "failed"
    return f"{verdict}: {reasons[0]}" if reasons else verdict


def gate_metrics(gate: Mapping[str, Any] | None) -> str:
    """The key metrics, base → candidate. eval.json has them by evaluation set; the
    validation split (what the gate's verdict rests on) is shown, else the first set."""
    if not gate:
        return ""
    base, cand = gate.get("base") or {}, gate.get("candidate") or {}
    prefix = ""
    if any(isinstance(v, Mapping) for v in base.values()):
        sets = [k for k in base if isinstance(cand.get(k), Mapping)]
        if not sets:
            return ""
        name = "validation" if "validation" in sets else sorted(sets)[0]
        base, cand, prefix = base[name], cand[name], f"{name}: "
    parts = [
        f"{label} {float(base[key]):.2f} → {float(cand[key]):.2f}"
        for key, label in KEY_METRICS
        if isinstance(base.get(key), int | float) and isinstance(cand.get(key), int | float)
    ]
    return prefix + ", ".join(parts) if parts else ""


class ModelsUI(Handlers):
    """Handlers of the "Model versions" section (admins only)."""

    #: What ``fill`` and every action refresh: the table, the picker, the compare picker.
    FILLED = 3

    def __init__(
        self,
        *,
        identity: IdentityService,
        registry: ModelRegistryService,
        compare: ModelCompareService,
        library: LibraryService,
    ) -> None:
        super().__init__(identity)
        self.registry = registry
        self.compare_service = compare
        self.library = library

    # -- reading -------------------------------------------------------------------

    def fill(self, request: gr.Request) -> tuple[Any, ...]:
        """The section on page load; nothing at all for members."""
        who, _ = self._caller(request)
        if not who.is_admin:
            return tuple(gr.update() for _ in range(self.FILLED))
        return self.refresh(None, request)

    def refresh(self, picked: str | None, request: gr.Request) -> tuple[Any, ...]:
        """The versions table and both pickers (keeping ``picked`` if it still exists)."""
        _, actor = self._admin(request)
        with refused():
            versions = self.registry.list(actor)
        names = {v.name for v in versions}
        choices = [(f"{v.name} ({v.status})", v.name) for v in versions]
        return (
            self._rows(actor, versions),
            gr.update(choices=choices, value=picked if picked in names else None),
            gr.update(choices=[("base model", BASE), *choices]),
        )

    def table(self, request: gr.Request) -> list[list[Any]]:
        """One row a version: the active one, then candidates, then retired ones."""
        _, actor = self._admin(request)
        with refused():
            return self._rows(actor, self.registry.list(actor))

    def _rows(self, actor: Actor, versions: list[ModelVersion]) -> list[list[Any]]:
        names = {v.collection.id: v.collection.name for v in self.library.list_collections(actor)}
        rows = []
        for v in versions:
            gate = (v.metrics or {}).get("gate")
            share = f"{v.traffic_share:.0%}" if v.status == VersionStatus.CANDIDATE else "-"
            rows.append(
                [
                    v.name,
                    v.status,
                    v.base_model,
                    ", ".join(names.get(c, c) for c in v.collection_ids or ()),
                    share,
                    gate_summary(gate),
                    gate_metrics(gate),
                    v.created_at.strftime("%Y-%m-%d %H:%M") if v.created_at else "",
                ]
            )
        return rows

    def pick(self, data: gr.SelectData) -> Any:
        """Clicking a row of the table picks its version."""
        row = data.row_value or []
        return gr.update(value=row[0]) if row else gr.update()

    def share_of(self, name: str | None, request: gr.Request) -> Any:
        """The picked version's current A/B share, to edit."""
        _, actor = self._admin(request)
        if not name:
            return gr.update()
        with refused():
            return gr.update(value=self.registry.get(actor, name).traffic_share)

    # -- changes -------------------------------------------------------------------

    def promote(self, name: str | None, force: bool, request: gr.Request) -> tuple[Any, ...]:
        """Make the picked version the active one; ``force`` overrules a failed gate
        (audited) and is unticked again afterwards."""
        _, actor = self._caller(request)
        name = _picked(name)
        with refused():
            v = self.registry.promote(actor, name, force=bool(force))
        before = html.escape(v.previous_active or "the base model")
        message = f"**{html.escape(v.name)}** is active (was: {before}); Roll back undoes it."
        if force and not ((v.metrics or {}).get("gate") or {}).get("passed"):
            message += " Forced past its evaluation gate (audited)."
        return (message, *self.refresh(name, request), gr.update(value=False))

    def rollback(self, picked: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Retire the active version; the one active before it (or the base model) returns."""
        _, actor = self._caller(request)
        with refused():
            done = self.registry.rollback(actor)
        now = html.escape(done.active.name if done.active else "the base model")
        message = f"Retired **{html.escape(done.retired.name)}**; {now} answers now."
        return (message, *self.refresh(picked, request))

    def retire(self, name: str | None, request: gr.Request) -> tuple[Any, ...]:
        _, actor = self._caller(request)
        name = _picked(name)
        with refused():
            v = self.registry.retire(actor, name)
        message = f"Retired **{html.escape(v.name)}**: it answers nobody now."
        return (message, *self.refresh(name, request))

    def set_share(
        self, name: str | None, share: float | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """Give the picked candidate a fraction of users in an A/B test (0 ends it)."""
        _, actor = self._caller(request)
        name = _picked(name)
        if share is None:
            raise gr.Error("Enter an A/B share: a fraction of users from 0 to 1.")
        with refused():
            v = self.registry.set_share(actor, name, float(share))
        who = html.escape(v.name)
        message = (
            f"**{who}** answers {v.traffic_share:.0%} of eligible users (sticky per user)."
            if v.traffic_share > 0
            else f"**{who}**'s A/B test has ended: it answers nobody."
        )
        return (message, *self.refresh(name, request))

    def compare(self, a: str | None, b: str | None, request: gr.Request) -> str:
        """The picked version against another (or the base model), from stored answers."""
        _, actor = self._admin(request)
        if not a or not b:
            raise gr.Error("Pick a version, and one to compare it with.")
        with refused():
            c = self.compare_service.compare(actor, a, b)
        return _comparison(c.a, c.b) + f"\n\n**Thumbs-up rate**: {html.escape(c.thumbs_up.verdict)}"


def _picked(name: str | None) -> str:
    if not name:
        raise gr.Error("Pick a version first.")
    return name


def _comparison(a: VersionStats, b: VersionStats) -> str:
    """Two versions' numbers as a Markdown table."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    def sec(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} s"

    rows: list[tuple[str, Callable[[VersionStats], str]]] = [
        ("answers", lambda s: str(s.answers)),
        ("latency p50 / p95", lambda s: f"{sec(s.latency_p50_s)} / {sec(s.latency_p95_s)}"),
        ("first token p50", lambda s: sec(s.ttft_p50_s)),
        ("error rate", lambda s: pct(s.error_rate)),
        ("abstention rate", lambda s: pct(s.abstention_rate)),
        ("thumbs up / down", lambda s: f"{s.thumbs_up} / {s.thumbs_down}"),
        ("thumbs-up rate", lambda s: pct(s.thumbs_up_rate)),
    ]
    head = f"| | {html.escape(a.version)} | {html.escape(b.version)} |\n|---|---|---|"
    return "\n".join([head, *(f"| {label} | {f(a)} | {f(b)} |" for label, f in rows)])
