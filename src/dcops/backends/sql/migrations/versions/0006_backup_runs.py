"""Backup runs: one row per run of a backup policy.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

NAME = 200


def upgrade() -> None:
    op.create_table(
        "backup_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(NAME), nullable=False),
        sa.Column("planned_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("snapshot_id", sa.String(64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("bytes_added", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_backup_runs"),
    )
    op.create_index("ix_backup_runs_policy", "backup_runs", ["policy", "planned_at"])
    op.create_index("ix_backup_runs_status", "backup_runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_backup_runs_status", table_name="backup_runs")
    op.drop_index("ix_backup_runs_policy", table_name="backup_runs")
    op.drop_table("backup_runs")
