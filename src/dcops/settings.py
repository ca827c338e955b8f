"""Configuration: one YAML file (optional) over embedded defaults, validated with clear errors.

Every field has a default, so ``dcops up`` runs with no file at all. Environment
variables ``DCOPS_DATA_DIR`` and ``DCOPS_CONFIG`` override where data and config live.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dcops.core.errors import Invalid

DEFAULT_PORT = 9180


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    max_body_mb: float = Field(32.0, gt=0)


class PrometheusAuthorization(_Strict):
    """How dcops authenticates to the remote store, as in Prometheus's remote_write config."""

    type: Literal["Bearer"] = "Bearer"
    credentials_file: Path
    """File holding the token; read on every request, so it can be rotated in place."""


class PrometheusSettings(_Strict):
    """Where the ``prometheus`` metrics backend writes (remote_write) and reads (HTTP API).

    Any Prometheus-compatible store: Prometheus (with ``--web.enable-remote-write-receiver``),
    Thanos Receive + Query, Mimir, VictoriaMetrics.
    """

    url: str
    """Base URL of the query API: ``{url}/api/v1/query`` must answer PromQL."""
    write_url: str | None = None
    """Where remote_write goes; default ``{url}/api/v1/write``."""
    authorization: PrometheusAuthorization | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request, e.g. ``X-Scope-OrgID`` for a Mimir tenant."""
    timeout_s: float = Field(30.0, gt=0)

    @field_validator("url", "write_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    def resolved_write_url(self) -> str:
        return self.write_url or f"{self.url}/api/v1/write"


class StorageSettings(_Strict):
    data_dir: Path = Path("~/.local/share/dcops")
    state_url: str | None = None
    """SQLAlchemy URL of the state store; default SQLite in data_dir, or postgresql+psycopg://..."""
    metrics_backend: Literal["embedded", "prometheus"] = "embedded"
    """``embedded``: DuckDB in data_dir; ``prometheus``: a remote Prometheus-compatible store."""
    prometheus: PrometheusSettings | None = Field(None, validate_default=True)
    """The remote store of the ``prometheus`` backend."""
    retention_days: float = Field(15.0, gt=0)
    rollup_retention_days: float = Field(90.0, gt=0)
    wal_fsync: bool = False
    """fsync the write-ahead log before acknowledging: survives power loss, not only a crash."""
    flush_interval_s: float = Field(1.0, gt=0)

    @field_validator("prometheus", mode="before")
    @classmethod
    def _prometheus_needs_its_section(cls, value: Any, info: ValidationInfo) -> Any:
        """Without the section the prometheus backend reports its missing ``url``."""
        if value is None and info.data.get("metrics_backend") == "prometheus":
            return {}
        return value

    def resolved_data_dir(self) -> Path:
        return Path(os.path.expanduser(str(self.data_dir)))

    def resolved_state_url(self) -> str:
        if self.state_url:
            return self.state_url
        return f"sqlite:///{self.resolved_data_dir() / 'state.db'}"


class ScrapeTarget(_Strict):
    name: str
    url: str
    interval_s: float = Field(15.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)


class AgentSettings(_Strict):
    server_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    token_file: Path | None = None
    interval_s: float = Field(15.0, gt=0)
    spool_dir: Path | None = None
    spool_max_mb: float = Field(256.0, gt=0)
    node_name: str | None = None
    batch_max_samples: int = Field(20_000, gt=0)


class RuleSettings(_Strict):
    """Alerting and recording rules: files in Prometheus's format, reloaded when they change."""

    paths: list[Path] = Field(default_factory=list)
    """Rule files, or directories of .yml/.yaml rule files."""
    default_pack: bool = True
    """Also load dcops's GPU-datacenter rules (``dcops rules pack`` prints where they are)."""


class RetrySettings(_Strict):
    """How a notification that could not be delivered is tried again."""

    initial_s: float = Field(1.0, gt=0)
    """Wait after the first failed attempt; each later wait doubles, with jitter."""
    max_s: float = Field(300.0, gt=0)
    """The longest wait between two attempts."""
    max_age_s: float = Field(86_400.0, gt=0)
    """Give up on a notification this long after it was made (and say so in the log)."""


class NotificationSettings(_Strict):
    """Where alerts go: routing, receivers and inhibition in Alertmanager's file format."""

    config_file: Path | None = None
    """An Alertmanager-format file (route, receivers, inhibit_rules), reloaded when it
    changes; without one, alerts are kept and shown but sent nowhere."""
    external_url: str = ""
    """The URL receivers are given to link back to dcops (default: the server's address)."""
    retry: RetrySettings = RetrySettings()


class DemoSettings(_Strict):
    racks: int = Field(8, ge=1, le=1000)
    nodes_per_rack: int = Field(8, ge=1, le=100)
    gpus_per_node: int = Field(8, ge=1, le=16)
    interval_s: float = Field(15.0, gt=0)
    seed: int = 7


class QuerySettings(_Strict):
    """The embedded PromQL engine's limits, as Prometheus's ``--query.*`` flags."""

    max_samples: int = Field(50_000_000, gt=0)
    """Samples one query may load (Prometheus's ``--query.max-samples``)."""
    lookback_delta_s: float = Field(300.0, gt=0)
    """How old a sample an instant selector still sees (``--query.lookback-delta``)."""


class TenantSettings(_Strict):
    """A team or project that submits jobs."""

    name: str = Field(min_length=1, max_length=200)
    gpu_quota: int | None = Field(None, ge=0)
    """GPUs it may use at once; none: no cap."""
    weight: float = Field(1.0, gt=0)
    """Its weight for fair share (shown by ``dcops jobs fairness``)."""


class LocalExecutorSettings(_Strict):
    """The local executor: jobs as processes on this machine, offered to the scheduler as
    `nodes` logical nodes of `gpus_per_node` GPUs (``CUDA_VISIBLE_DEVICES`` picks them)."""

    nodes: int = Field(1, ge=1, le=64)
    gpus_per_node: int = Field(8, ge=0, le=64)
    workdir: Path | None = None
    """Where jobs' commands run; default the directory the server was started in."""
    stop_grace_s: float = Field(10.0, gt=0)
    """After SIGTERM (cancel, preempt), how long a job has before SIGKILL."""


class SlurmExecutorSettings(_Strict):
    """The Slurm executor: jobs submitted with sbatch to an existing Slurm cluster."""

    slurm_conf: Path | None = None
    bin_dir: Path | None = None
    partition: str | None = None
    output: str | None = None
    """sbatch ``--output`` pattern, e.g. ``/var/log/dcops/%x-%j.out``."""
    timeout_s: float = Field(30.0, gt=0)


class SchedulingSettings(_Strict):
    """GPU jobs: the policy that orders them, what runs them, and who may submit."""

    enabled: bool = True
    policy: str = "fifo"
    """fifo, qssf (shortest predicted GPU-time first), tiresias (2D-LAS, preemptive), easy
    (EASY backfill), fairshare (DRF across tenants) or dcops (shortest predicted remaining
    time, preemptive)."""
    executor: Literal["local", "slurm"] = "local"
    placement: Literal["consolidate", "topology", "packer"] = "consolidate"
    """Where a job's GPUs go: best fit on one node (whole nodes above a node's size), by
    NVLink domain / leaf switch / rack, or the HiGHS packer."""
    tick_interval_s: float = Field(1.0, gt=0)
    """How often the scheduler looks at finished jobs and the queue."""
    tenants: list[TenantSettings] = Field(default_factory=list)
    """Without tenants any tenant name is accepted, with no quota."""
    local: LocalExecutorSettings = LocalExecutorSettings()
    slurm: SlurmExecutorSettings = SlurmExecutorSettings()

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        from dcops.scheduling.service import POLICIES

        if value not in POLICIES:
            raise ValueError(f"unknown policy {value!r}; one of: {', '.join(sorted(POLICIES))}")
        return value

    @field_validator("tenants")
    @classmethod
    def _unique_tenants(cls, value: list[TenantSettings]) -> list[TenantSettings]:
        names = [t.name for t in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tenant {twice[0]!r} is listed more than once")
        return value


class GuardrailConfig(_Strict):
    """Limits on automatic remediation (see `dcops.remediation.guardrails`)."""

    max_out_nodes: int = Field(10, ge=1)
    """Most nodes dcops may have out of service at once."""
    max_out_fraction: float = Field(0.02, gt=0, le=1)
    """Most of the fleet (a share) dcops may have out at once; the smaller limit wins."""
    max_drains: int = Field(10, ge=1)
    rate_window_s: float = Field(600.0, ge=0)
    """At most `max_drains` new drains within any `rate_window_s`."""
    cooldown_s: float = Field(3600.0, ge=0)
    """No automatic second reset or reboot, nor resume of a repeat offender, within this."""
    storm_nodes: int = Field(20, ge=1)
    storm_window_s: float = Field(300.0, ge=0)
    """`storm_nodes` nodes flagged within `storm_window_s` open the circuit breaker."""
    storm_quiet_s: float = Field(1800.0, ge=0)
    """The breaker closes by itself after this long without a new flag."""


class SlurmActuatorSettings(_Strict):
    """Node commands Slurm cannot run itself."""

    reset_command: list[str] = Field(default_factory=list)
    """Resets one GPU, e.g. ``["ssh", "{node}", "nvidia-smi", "-r", "-i", "{gpu}"]``."""
    reboot_command: list[str] = Field(default_factory=list)
    """Empty: ``scontrol reboot`` (Slurm's RebootProgram)."""


class RemediationSettings(_Strict):
    """Health diagnosis and automatic remediation."""

    enabled: bool = True
    executor: Literal["scheduler", "slurm", "none"] = "scheduler"
    """What carries actions out: dcops's own scheduler (drain = no new jobs there, requeue
    through the scheduler), Slurm (``scontrol``), or nothing (diagnosis only)."""
    modes: dict[str, Literal["auto", "approve", "notify-only"]] = Field(default_factory=dict)
    """Per action (drain, drain_now, requeue, reset_gpu, reboot, playbook, recheck, resume,
    notify): auto, approve or notify-only. Defaults: reboot and playbook need approval."""
    guardrails: GuardrailConfig = GuardrailConfig()
    playbook_dir: Path | None = None
    """Where remediation playbooks live (default: the ones shipped with dcops)."""
    playbooks: dict[str, str] = Field(default_factory=dict)
    """Cause keyword -> playbook, for degraded nodes (e.g. ``disk: disk-cleanup.yml``)."""
    playbook_vars: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Playbook -> its variables (e.g. ``disk-cleanup.yml: {dcops_scratch_dir: /scratch}``)."""
    unreachable_s: float = Field(120.0, gt=0)
    """A node that reported and then went silent this long is unreachable."""
    recheck_quiet_s: float = Field(30.0, ge=0)
    """A re-check passes once the node reports and sent no fault signal for this long."""
    tick_s: float = Field(1.0, gt=0)
    slurm: SlurmActuatorSettings = SlurmActuatorSettings()

    @field_validator("modes")
    @classmethod
    def _known_actions(cls, value: dict[str, str]) -> dict[str, str]:
        from dcops.remediation.model import ActionKind

        known = {k.value for k in ActionKind}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r}; one of: {', '.join(sorted(known))}")
        return value


DETECTOR_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class DetectorSettings(_Strict):
    """One anomaly detector run by the server (see `dcops.detection.spec.DetectorSpec`)."""

    name: str = Field(min_length=1, max_length=100, pattern=DETECTOR_NAME)
    """Its ``detector`` label on ``dcops_anomaly_score`` and on its alerts."""
    kind: str
    """univariate, univariate-fast, multivariate, fleet, crossing, zscore, or another
    registered kind."""
    selectors: list[str] = Field(min_length=1, max_length=32)
    """PromQL, one column each: plain selectors are read per interval (counters, named
    *_total, as rates); other expressions as written."""
    group_by: list[str] = Field(default_factory=list)
    """fleet: entities with the same values of these labels are peers (e.g. model)."""
    entity_by: list[str] | None = None
    """Labels naming what gets one score (default: all labels of a series)."""
    threshold: float = Field(0.8, gt=0, le=1)
    for_s: float = Field(120.0, ge=0)
    resolve_s: float | None = Field(None, ge=0)
    """Below the threshold this long resolves the alert (default for_s)."""
    severity: str = Field("warning", min_length=1, max_length=50)
    rate: bool | None = None
    window_s: float | None = Field(None, gt=0)
    interval_s: float | None = Field(None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)
    """Passed to the detector kind (fleet: direction, alpha, min_group, half_sigma...)."""

    @field_validator("group_by", "entity_by")
    @classmethod
    def _label_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or name == "__name__":
                raise ValueError(f"{name!r} is not a label name")
        return value

    @field_validator("selectors")
    @classmethod
    def _promql(cls, value: list[str]) -> list[str]:
        from dcops.core.errors import DcopsError
        from dcops.detection.selection import parse

        for text in value:
            try:
                parse(text)
            except DcopsError as exc:
                raise ValueError(f"{text!r} is {exc.message}") from None
        return value

    @field_validator("kind")
    @classmethod
    def _registered(cls, value: str) -> str:
        from dcops.core.errors import DcopsError
        from dcops.detection.registry import lookup

        try:
            lookup(value)
        except DcopsError as exc:
            raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _params_fit(self) -> DetectorSettings:
        from dcops.core.errors import DcopsError
        from dcops.detection.registry import check

        try:
            check(self.kind, self.params, self.selectors)
        except DcopsError as exc:
            raise ValueError(exc.message) from None
        return self


def _default_detectors() -> list[DetectorSettings]:
    """GPU temperature against identical peers: on by default, on real and demo fleets.
    Built unvalidated (it is known good), so reading settings loads neither numpy nor the
    PromQL parser (the agent reads settings too)."""
    return [DetectorSettings.model_construct(name="gpu-temperature-vs-peers", kind="fleet",
                             selectors=["dcops_gpu_temperature_celsius"], group_by=["model"],
                             params={"direction": "high"})]


class DetectionSettings(_Strict):
    """Anomaly detectors run continuously on the stored series; their scores are written
    as ``dcops_anomaly_score`` and raise ``AnomalyDetected`` alerts."""

    enabled: bool = True
    interval_s: float = Field(30.0, gt=0)
    """The step detectors score at (each may set its own)."""
    delay_s: float = Field(15.0, ge=0)
    """A step is scored this long after it ends, so late samples are in."""
    backfill_s: float = Field(900.0, ge=0)
    """On a start with no saved state (or after a long stop), how far back to score."""
    forget_after_s: float = Field(3600.0, gt=0)
    """A series silent this long is dropped, with its detector state."""
    save_every_s: float = Field(300.0, gt=0)
    detectors: list[DetectorSettings] = Field(default_factory=_default_detectors)

    @field_validator("detectors")
    @classmethod
    def _unique_names(cls, value: list[DetectorSettings]) -> list[DetectorSettings]:
        names = [d.name for d in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"detector {twice[0]!r} is listed more than once")
        return value


RETENTION_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
                  "keep_yearly")


def _known_retention(value: dict[str, int]) -> dict[str, int]:
    unknown = sorted(set(value) - set(RETENTION_KEYS))
    if unknown:
        raise ValueError(f"unknown retention {unknown[0]!r}; one of: {', '.join(RETENTION_KEYS)}")
    if any(n < 0 for n in value.values()):
        raise ValueError("retention counts are 0 or more")
    return value


class BackupPolicySettings(_Strict):
    """Paths (checkpoint directories, datasets) backed up every `every_s` seconds."""

    name: str = Field(min_length=1, max_length=100, pattern=DETECTOR_NAME)
    paths: list[Path] = Field(min_length=1)
    every_s: float = Field(86_400.0, gt=0)
    window_s: float | None = Field(None, gt=0)
    """Not backed up successfully within this long: ``BackupOverdue`` (default 2x every_s)."""
    tags: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    """Glob patterns matched against each path and each name, as ``backup --exclude``."""
    retention: dict[str, int] = Field(default_factory=dict)
    """keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly."""
    enabled: bool = True

    _retention = field_validator("retention")(_known_retention)

    @field_validator("name")
    @classmethod
    def _not_built_in(cls, value: str) -> str:
        if value == "control-plane":
            raise ValueError("'control-plane' is the built-in self-backup; see "
                             "backup.self_backup")
        return value


class SelfBackupSettings(_Strict):
    """The control plane's own backup: a consistent copy of the state store (SQLite) and
    the configured rule files."""

    enabled: bool = True
    every_s: float = Field(21_600.0, gt=0)
    window_s: float | None = Field(None, gt=0)
    retention: dict[str, int] = Field(
        default_factory=lambda: {"keep_last": 7, "keep_daily": 14})

    _retention = field_validator("retention")(_known_retention)


class BackupSettings(_Strict):
    """Backups run by the server into one repository; off without a repository."""

    repository: str | None = None
    """A directory, or ``s3:http://host:port/bucket/prefix`` (keys from the environment's
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); created with ``dcops backup init``."""
    password_file: Path | None = None
    """File holding the repository's password (read once, when the repository opens)."""
    policies: list[BackupPolicySettings] = Field(default_factory=list)
    self_backup: SelfBackupSettings = SelfBackupSettings()
    tick_s: float = Field(30.0, gt=0)
    """How often the service looks for due and overdue policies."""
    workers: int | None = Field(None, ge=1, le=256)
    """Encoder threads per run (default: one per core)."""
    restore_roots: list[Path] = Field(default_factory=list)
    """Directories a restore asked for through the API may write under (default: the
    ``restores`` directory in the data directory)."""

    @field_validator("restore_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        for root in value:
            if not root.is_absolute():
                raise ValueError(f"restore root {str(root)!r} is not an absolute path")
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must be a directory or an s3: URL")
        if value.startswith("s3:"):
            rest = value[3:]
            if not rest.startswith(("http://", "https://")) or \
                    not rest.split("://", 1)[1].partition("/")[2].strip("/"):
                raise ValueError("an s3: repository is s3:http(s)://host:port/bucket[/prefix]")
        elif "://" in value:
            raise ValueError("must be a directory or an s3: URL "
                             "(s3:http://host:port/bucket/prefix)")
        return value

    @field_validator("policies")
    @classmethod
    def _unique_policies(cls, value: list[BackupPolicySettings]) -> list[BackupPolicySettings]:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"backup policy {twice[0]!r} is listed more than once")
        return value

    @model_validator(mode="after")
    def _needs_repository(self) -> BackupSettings:
        if self.repository is None and self.policies:
            raise ValueError("backup policies need backup.repository (a directory or an "
                             "s3: URL) and backup.password_file")
        if self.repository is not None and self.password_file is None:
            raise ValueError("backup.repository needs backup.password_file (a file holding "
                             "the repository's password)")
        return self

    @property
    def enabled(self) -> bool:
        return self.repository is not None


class Settings(_Strict):
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    query: QuerySettings = QuerySettings()
    rules: RuleSettings = RuleSettings()
    notifications: NotificationSettings = NotificationSettings()
    scrape: list[ScrapeTarget] = Field(default_factory=list)
    agent: AgentSettings = AgentSettings()
    demo: DemoSettings = DemoSettings()
    scheduling: SchedulingSettings = SchedulingSettings()
    remediation: RemediationSettings = RemediationSettings()
    detection: DetectionSettings = DetectionSettings()
    backup: BackupSettings = BackupSettings()


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_settings(data: Any, source: str = "config") -> Settings:
    """Validate a parsed YAML document; errors name the file and the dotted key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid("config must be a mapping of sections", where=source)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise Invalid(f"{first['msg']}{more}", where=f"{source}: {_where(first['loc'])}") from None


def load_settings(path: Path | None = None, data_dir: Path | None = None) -> Settings:
    """Read settings from `path` (or $DCOPS_CONFIG), falling back to defaults."""
    env_path = os.environ.get("DCOPS_CONFIG")
    if path is None and env_path:
        path = Path(env_path)
    data: Any = {}
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise Invalid(f"cannot read config: {exc.strerror}", where=str(path)) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise Invalid(str(problem), where=where) from None
    settings = parse_settings(data, str(path) if path else "config")
    env_dir = os.environ.get("DCOPS_DATA_DIR")
    chosen = data_dir or (Path(env_dir) if env_dir else None)
    if chosen is not None:
        storage = settings.storage.model_copy(update={"data_dir": chosen})
        settings = settings.model_copy(update={"storage": storage})
    return settings
