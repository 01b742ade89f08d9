"""Fine-tuned model versions: one row per registered training run (``lantern models``).

A version is a LoRA adapter (and maybe a GGUF export of it) with what it was trained
on. Its ``collection_ids`` decide who may ever be answered by it: weights memorise
their training set, so only a user who may read every one of those collections gets it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.models import Base, new_id, utcnow


class VersionStatus:
    #: Registered, not serving everyone (may serve an A/B share of users).
    CANDIDATE = "candidate"
    #: The one version every eligible user gets outside A/B tests (at most one).
    ACTIVE = "active"
    #: Served to nobody; kept for the record and for rollback.
    RETIRED = "retired"
    ALL = (CANDIDATE, ACTIVE, RETIRED)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    #: What admins type and what vLLM serves the adapter as (the request's ``model``).
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The base model's hub id or folder (run.json ``base_model.id``).
    base_model: Mapped[str] = mapped_column(Text)
    #: The run it came from (where run.json, export.json and eval.json are).
    run_dir: Mapped[str] = mapped_column(Text)
    adapter_path: Mapped[str] = mapped_column(Text)
    adapter_sha256: Mapped[str] = mapped_column(String(64), index=True)
    gguf_path: Mapped[str | None] = mapped_column(Text, default=None)
    gguf_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    dataset_hash: Mapped[str] = mapped_column(String(64))
    #: The collections the training set drew from.
    collection_ids: Mapped[list[str]] = mapped_column(default=list)
    #: ``{"gate": eval.json or None, "run": run numbers, "gguf_files": export.json files}``.
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.CANDIDATE, index=True)
    #: The share of users (0..1, sticky by user id) an A/B test gives this candidate.
    traffic_share: Mapped[float] = mapped_column(Float, default=0.0)
    #: The version that was active when this one was promoted (None: the base model),
    #: what a rollback returns to.
    previous_active: Mapped[str | None] = mapped_column(String(200), default=None)
    created_by: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
