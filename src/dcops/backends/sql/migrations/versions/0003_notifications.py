"""Notifications: silences, the notification log and the delivery outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

NAME = 200


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.Double(), nullable=False),
        sa.Column("ends_at", sa.Double(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "notification_log",
        sa.Column("receiver", sa.String(NAME), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("firing", sa.JSON(), nullable=False),
        sa.Column("resolved", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("receiver", "group_key", name="pk_notification_log"),
    )
    op.create_table(
        "outbox",
        sa.Column("notification_id", sa.String(64), nullable=False),
        sa.Column("notifier", sa.String(NAME), nullable=False),
        sa.Column("notification", sa.Text(), nullable=False),
        sa.Column("enqueued_at", sa.Double(), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("done_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", "notifier", name="pk_outbox"),
    )
    op.create_index("ix_outbox_state", "outbox", ["state"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("notification_log")
    op.drop_index("ix_silences_ends_at", table_name="silences")
    op.drop_table("silences")
