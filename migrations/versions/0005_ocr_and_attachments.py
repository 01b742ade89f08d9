"""pages.ocr and chunks.ocr: text read by OCR from an image, shown so in citations;
documents.parent_id: an e-mail's attachments are documents of their own, linked to it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("pages", "chunks"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("ocr", sa.Boolean(), server_default=sa.false(), nullable=False)
            )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_documents_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_documents_parent_id_documents"),
            "documents",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_documents_parent_id_documents"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_documents_parent_id"))
        batch_op.drop_column("parent_id")
    for table in ("chunks", "pages"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("ocr")
