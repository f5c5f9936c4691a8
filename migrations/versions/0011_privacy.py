"""privacy mode: clients.private, and the read log of messages (message_reads)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "message_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reader", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_reads_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_reads")),
    )
    with op.batch_alter_table("message_reads", schema=None) as batch_op:
        batch_op.create_index("ix_message_reads_message", ["message_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_message_reads_message")
    op.drop_table("message_reads")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("private")
