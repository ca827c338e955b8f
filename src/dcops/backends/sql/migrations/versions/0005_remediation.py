"""Remediation: plans (resumed after a restart) and incidents with their timelines.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

NAME = 200


def upgrade() -> None:
    op.create_table(
        "remediation_plans",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(NAME), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_remediation_plans"),
    )
    op.create_index("ix_remediation_plans_live", "remediation_plans", ["live"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(NAME), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("opened_at", sa.Double(), nullable=False),
        sa.Column("gpu_hours_at_risk", sa.Double(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_state", "incidents", ["state"])


def downgrade() -> None:
    op.drop_index("ix_incidents_state", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_remediation_plans_live", table_name="remediation_plans")
    op.drop_table("remediation_plans")
