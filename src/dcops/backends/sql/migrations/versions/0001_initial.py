"""Initial state store: inventory, tokens, audit log, meta.

Revision ID: 0001
Revises:
Create Date: 2024-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

NAME = 200


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sites"),
    )
    op.create_table(
        "rooms",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("site", sa.String(NAME), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["site"], ["sites.name"], name="fk_rooms_site_sites"),
        sa.PrimaryKeyConstraint("name", name="pk_rooms"),
    )
    op.create_index("ix_rooms_site", "rooms", ["site"])
    op.create_table(
        "racks",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("room", sa.String(NAME), nullable=False),
        sa.Column("power_capacity_watts", sa.Double(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["room"], ["rooms.name"], name="fk_racks_room_rooms"),
        sa.PrimaryKeyConstraint("name", name="pk_racks"),
    )
    op.create_index("ix_racks_room", "racks", ["room"])
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("rack", sa.String(NAME), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("gpu_model", sa.Text(), nullable=False),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(["rack"], ["racks.name"], name="fk_nodes_rack_racks"),
        sa.PrimaryKeyConstraint("name", name="pk_nodes"),
    )
    op.create_index("ix_nodes_rack", "nodes", ["rack"])
    op.create_table(
        "gpus",
        sa.Column("node", sa.String(NAME), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(["node"], ["nodes.name"], name="fk_gpus_node_nodes",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node", "index", name="pk_gpus"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_target", "audit", ["target"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(NAME), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_index("ix_audit_target", table_name="audit")
    op.drop_table("audit")
    op.drop_table("tokens")
    op.drop_table("gpus")
    op.drop_index("ix_nodes_rack", table_name="nodes")
    op.drop_table("nodes")
    op.drop_index("ix_racks_room", table_name="racks")
    op.drop_table("racks")
    op.drop_index("ix_rooms_site", table_name="rooms")
    op.drop_table("rooms")
    op.drop_table("sites")
