"""Alert journal: the history of every alert and the alerts live across restarts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("alertname", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_fingerprint", "alert_events", ["fingerprint"])
    op.create_index("ix_alert_events_alertname", "alert_events", ["alertname"])
    op.create_index("ix_alert_events_at_ms", "alert_events", ["at_ms"])
    op.create_table(
        "alert_states",
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("active_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("fired_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("group_key", "rule", "fingerprint", name="pk_alert_states"),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_index("ix_alert_events_at_ms", table_name="alert_events")
    op.drop_index("ix_alert_events_alertname", table_name="alert_events")
    op.drop_index("ix_alert_events_fingerprint", table_name="alert_events")
    op.drop_table("alert_events")
