"""client levels: who called back, and a promised call back's deadline on the escalation

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("called_back_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lap", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("callback_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("callback_missed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_escalations_callback_due", ["callback_due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_escalations_callback_due")
        batch_op.drop_column("callback_missed_at")
        batch_op.drop_column("callback_due_at")
        batch_op.drop_column("lap")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("called_back_by")
