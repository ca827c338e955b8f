"""The tables of dcops's state store: inventory, API tokens, audit log, a key/value meta table,
the alert journal (history and live alerts), notifications, the scheduler's jobs, and
remediation plans and incidents.

These SQLAlchemy Core tables are what the code reads and writes; the Alembic
migrations in `migrations/versions` create them, and a test checks the two agree.
Names are primary keys, as operators and the API address every object by name.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from dcops.fleet.memory import MAX_NAME

NAME = MAX_NAME
"""Longest name of a site, room, rack or node; free text columns are unbounded Text."""

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

sites = Table(
    "sites", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("description", Text, nullable=False, default=""),
)

rooms = Table(
    "rooms", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("site", String(NAME), ForeignKey("sites.name"), nullable=False, index=True),
    Column("description", Text, nullable=False, default=""),
)

racks = Table(
    "racks", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("room", String(NAME), ForeignKey("rooms.name"), nullable=False, index=True),
    Column("power_capacity_watts", Double, nullable=True),
    Column("description", Text, nullable=False, default=""),
)

nodes = Table(
    "nodes", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("rack", String(NAME), ForeignKey("racks.name"), nullable=True, index=True),
    Column("state", String(20), nullable=False),
    Column("gpu_model", Text, nullable=False, default=""),
    Column("gpu_count", Integer, nullable=False, default=0),
    Column("labels", JSON, nullable=False),
    Column("last_seen", Double, nullable=True),
)

gpus = Table(
    "gpus", metadata,
    Column("node", String(NAME), primary_key=True),
    Column("index", Integer, primary_key=True),
    Column("uuid", Text, nullable=False, default=""),
    Column("model", Text, nullable=False, default=""),
    Column("state", String(20), nullable=False),
    ForeignKeyConstraint(["node"], ["nodes.name"], ondelete="CASCADE"),
)

tokens = Table(
    "tokens", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_target", "target"),
)

meta = Table(
    "meta", metadata,
    Column("key", String(NAME), primary_key=True),
    Column("value", Text, nullable=False),
)

alert_events = Table(
    "alert_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("fingerprint", String(16), nullable=False),
    Column("alertname", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("event", String(20), nullable=False),
    Column("actor", Text, nullable=False),
    Column("value", Double, nullable=True),
    Column("details", JSON, nullable=False),
    Index("ix_alert_events_fingerprint", "fingerprint"),
    Index("ix_alert_events_alertname", "alertname"),
    Index("ix_alert_events_at_ms", "at_ms"),
)

alert_states = Table(
    "alert_states", metadata,
    Column("group_key", Text, primary_key=True),
    Column("rule", Text, primary_key=True),
    Column("fingerprint", String(16), primary_key=True),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("state", String(20), nullable=False),
    Column("value", Double, nullable=True),
    Column("active_at_ms", BigInteger, nullable=False),
    Column("fired_at_ms", BigInteger, nullable=True),
    Column("flapping", Boolean, nullable=False, default=False),
)

silences = Table(
    "silences", metadata,
    Column("id", String(64), primary_key=True),
    Column("matchers", JSON, nullable=False),
    Column("starts_at", Double, nullable=False),
    Column("ends_at", Double, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index("ix_silences_ends_at", "ends_at"),
)

notification_log = Table(
    "notification_log", metadata,
    Column("receiver", String(NAME), primary_key=True),
    Column("group_key", Text, primary_key=True),
    Column("firing", JSON, nullable=False),
    Column("resolved", JSON, nullable=False),
    Column("sent_at", Double, nullable=False),
)

outbox = Table(
    "outbox", metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("notifier", String(NAME), primary_key=True),
    Column("notification", Text, nullable=False),
    Column("enqueued_at", Double, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("last_error", Text, nullable=False),
    Column("done_at", Double, nullable=True),
    Index("ix_outbox_state", "state"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("tenant", String(NAME), nullable=False),
    Column("state", String(20), nullable=False),
    Column("submit_s", Double, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("progress", JSON, nullable=False),
    Column("events", JSON, nullable=False),
    Index("ix_jobs_state", "state"),
)

remediation_plans = Table(
    "remediation_plans", metadata,
    Column("id", String(64), primary_key=True),
    Column("node", String(NAME), nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("live", Boolean, nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_remediation_plans_live", "live"),
)
"""Remediation plans, saved before and after each step so a restart resumes them."""

incidents = Table(
    "incidents", metadata,
    Column("id", String(64), primary_key=True),
    Column("node", String(NAME), nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", Double, nullable=False),
    Column("gpu_hours_at_risk", Double, nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_incidents_state", "state"),
)
"""Incidents: one per fault, with its timeline."""


backup_runs = Table(
    "backup_runs", metadata,
    Column("id", String(64), primary_key=True),
    Column("policy", String(NAME), nullable=False),
    Column("status", String(20), nullable=False),
    Column("trigger", String(NAME), nullable=False),
    Column("planned_at", Double, nullable=False),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    Column("snapshot_id", String(64), nullable=True),
    Column("bytes", BigInteger, nullable=False),
    Column("bytes_added", BigInteger, nullable=False),
    Column("files", BigInteger, nullable=False),
    Column("error", Text, nullable=False),
    Index("ix_backup_runs_policy", "policy", "planned_at"),
    Index("ix_backup_runs_status", "status"),
)
"""Backup runs: one row per run of a backup policy, from planned to succeeded or failed."""
