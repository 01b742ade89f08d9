"""Request and response bodies of the model registry's admin endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.api.schemas import Model, RequestModel, Timestamp


class ModelVersionOut(Model):
    id: str
    name: str = Field(examples=["qwen2.5-7b-instruct-20261202-0915"])
    status: Literal["candidate", "active", "retired"]
    #: The fraction of users an A/B test gives this candidate.
    traffic_share: float
    base_model: str = Field(examples=["Qwen/Qwen2.5-7B-Instruct"])
    previous_active: str | None
    collection_ids: list[str]
    dataset_hash: str
    adapter_path: str
    adapter_sha256: str
    gguf_path: str | None
    gguf_sha256: str | None
    metrics: dict[str, Any] = Field(
        description="gate: the evaluation report (eval.json); run: the training numbers."
    )
    created_by: str | None
    created_at: Timestamp
    updated_at: Timestamp


class RollbackOut(BaseModel):
    #: The version active now (None: the base model answers).
    active: ModelVersionOut | None
    #: The version that was active and is now retired.
    retired: ModelVersionOut


class ShareIn(RequestModel):
    share: float = Field(
        ge=0,
        le=1,
        examples=[0.1],
        description="Fraction of users (sticky by user id) the candidate answers; 0 ends it.",
    )
