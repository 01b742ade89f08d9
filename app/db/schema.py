"""Every table, for Alembic and schema checks: importing this registers all models."""

from __future__ import annotations

from app.db import audit, chat, identity, model_versions, models

metadata = models.Base.metadata

__all__ = ["audit", "chat", "identity", "metadata", "model_versions", "models"]
