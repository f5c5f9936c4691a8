"""callers and called numbers up to 255 characters: SIP addresses as well as phone numbers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        for column in ("caller", "called"):
            batch_op.alter_column(
                column, existing_type=sa.String(length=32), type_=sa.String(length=255)
            )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column(
            "caller", existing_type=sa.String(length=32), type_=sa.String(length=255)
        )


def downgrade() -> None:
    # Longer values would not fit back: cut them to the old size first.
    for table, column in (("calls", "caller"), ("calls", "called"), ("messages", "caller")):
        op.execute(
            sa.text(f"UPDATE {table} SET {column} = substr({column}, 1, 32)")  # noqa: S608
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column(
            "caller", existing_type=sa.String(length=255), type_=sa.String(length=32)
        )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        for column in ("caller", "called"):
            batch_op.alter_column(
                column, existing_type=sa.String(length=255), type_=sa.String(length=32)
            )
