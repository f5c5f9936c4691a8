"""records: message timelines hash-chained, recordings owed a deletion at Twilio

Existing events are chained here, at migration time, in the order they were written (by id):
from now on an edit to them shows. Nothing can say whether they were edited before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.messages.chain import event_hash

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recording_deletions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("owed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_recording_deletions_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_deletions")),
        sa.UniqueConstraint("sid", name=op.f("uq_recording_deletions_sid")),
    )
    with op.batch_alter_table("recording_deletions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recording_deletions_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_recording_deletions_due_at"), ["due_at"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timeline_length", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("timeline_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    _chain_existing_events()

    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_message_events_message_id_seq"), ["message_id", "seq"]
        )


def _chain_existing_events() -> None:
    """Each message's events in the order written, numbered and hashed as
    `app.messages.timeline.add_event` would have; the message gets the chain's end."""
    events = sa.table(
        "message_events",
        sa.column("id", sa.Integer()),
        sa.column("message_id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("kind", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("seq", sa.Integer()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    messages = sa.table(
        "messages",
        sa.column("id", sa.Integer()),
        sa.column("timeline_length", sa.Integer()),
        sa.column("timeline_hash", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            events.c.id, events.c.message_id, events.c.at, events.c.kind, events.c.detail
        ).order_by(events.c.message_id, events.c.id)
    ).all()
    chained: list[dict[str, object]] = []
    heads: dict[int, tuple[int, str]] = {}
    for row in rows:
        seq, prev_hash = heads.get(row.message_id, (0, None))
        seq += 1
        digest = event_hash(row.message_id, seq, row.at, row.kind, row.detail or {}, prev_hash)
        chained.append({"event": row.id, "seq": seq, "prev_hash": prev_hash, "hash": digest})
        heads[row.message_id] = (seq, digest)
    if chained:
        connection.execute(
            events.update()
            .where(events.c.id == sa.bindparam("event"))
            .values(
                seq=sa.bindparam("seq"),
                prev_hash=sa.bindparam("prev_hash"),
                hash=sa.bindparam("hash"),
            ),
            chained,
        )
        connection.execute(
            messages.update()
            .where(messages.c.id == sa.bindparam("message"))
            .values(timeline_length=sa.bindparam("length"), timeline_hash=sa.bindparam("head")),
            [
                {"message": message, "length": length, "head": head}
                for message, (length, head) in heads.items()
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_message_events_message_id_seq"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("timeline_hash")
        batch_op.drop_column("timeline_length")
    with op.batch_alter_table("recording_deletions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_deletions_due_at"))
        batch_op.drop_index(batch_op.f("ix_recording_deletions_client_id"))
    op.drop_table("recording_deletions")
