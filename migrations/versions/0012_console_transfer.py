"""console: warm transfers to the on-call contact, the PA's conference sid

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 13:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conference_sid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("transfer_state", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("transfers", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("transfer_contact", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("transfer_call_sid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_entries", schema=None) as batch_op:
        batch_op.drop_column("transfer_call_sid")
        batch_op.drop_column("transfer_contact")
        batch_op.drop_column("transfers")
        batch_op.drop_column("transfer_state")
        batch_op.drop_column("conference_sid")
