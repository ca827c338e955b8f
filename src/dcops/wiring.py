"""The composition root: the only place that builds backends from settings."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from dcops.access.model import Role
from dcops.access.store import AuditLog, TokenStore
from dcops.alerts.journal import AlertJournal, BufferedJournal
from dcops.backends.backup_location import backup_storage
from dcops.core.clock import Clock, SystemClock
from dcops.core.errors import Invalid, NotFound
from dcops.fleet.inventory import Inventory
from dcops.fleet.registration import Registrar
from dcops.settings import Settings
from dcops.telemetry.ingest import Ingestor
from dcops.telemetry.store import MetricsStore, Retention

if TYPE_CHECKING:  # the PromQL engine loads only where a server is built
    from dcops.alerts.notifications import NotifiedAlert
    from dcops.alerts.pipeline import Pipeline
    from dcops.alerts.service import Rules
    from dcops.alerts.silences import Silences
    from dcops.backends.sql.state import StateStore
    from dcops.backup.policy import BackupPolicy
    from dcops.backup.repository import Repository
    from dcops.backup.service import BackupAlert, BackupService
    from dcops.core.raised import RaisedAlert
    from dcops.detection.service import DetectionService
    from dcops.query import Querier
    from dcops.remediation.actuator import Actuator, PlaybookRunner
    from dcops.remediation.service import RemediationService
    from dcops.scheduling.executor import ClusterManager
    from dcops.scheduling.service import JobService
    from dcops.scheduling.store import JobStore

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"
AGENT_TOKEN_FILE = "agent.token"


@dataclass
class Services:
    """Everything a running control plane uses, built once and closed once."""

    settings: Settings
    clock: Clock
    store: MetricsStore
    querier: Querier
    """Answers PromQL: `Engine` over `store`, or the remote store itself."""
    inventory: Inventory
    tokens: TokenStore
    audit: AuditLog
    registry: CollectorRegistry
    ingestor: Ingestor
    rules: Rules
    """Alerting and recording rules from the configured files, evaluated by the server."""
    alert_journal: AlertJournal
    """Alert history, and the alerts kept across restarts."""
    silences: Silences
    pipeline: Pipeline
    """Rules, then routing, grouping, silences, inhibition and delivery to receivers."""
    jobs: JobService
    """GPU jobs: the scheduler over the configured executor, ticked by the server."""
    remediation: RemediationService | None = None
    """Health diagnosis and remediation, driven by its own thread; None when switched off."""
    detection: DetectionService | None = None
    """Anomaly detectors over the stored series, driven by their own thread; None when
    switched off."""
    backup: BackupService | None = None
    """Backup policies run into the configured repository by their own thread; None
    without a repository."""
    _closers: list[object] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.settings.storage.resolved_data_dir()

    def close(self) -> None:
        if self.detection is not None:  # its state is saved before anything closes
            self.detection.close()
        self.store.close()
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if callable(close):
                close()


def retention_of(settings: Settings) -> Retention:
    return Retention(raw_s=settings.storage.retention_days * 86400,
                     rollup_s=settings.storage.rollup_retention_days * 86400)


def _remote_metrics(settings: Settings, clock: Clock) -> tuple[MetricsStore, Querier] | None:
    """The prometheus backend's store and querier, sharing one HTTP client; None if embedded."""
    prom = settings.storage.prometheus
    if settings.storage.metrics_backend != "prometheus" or prom is None:
        return None
    from dcops.backends.prometheus import PrometheusMetricsStore
    from dcops.backends.prometheus_http import PrometheusClient, PrometheusQuerier

    auth = prom.authorization
    client = PrometheusClient(prom.url, write_url=prom.resolved_write_url(),
                              timeout_s=prom.timeout_s, headers=prom.headers,
                              token_file=auth.credentials_file if auth else None)
    log.info("metrics in the Prometheus-compatible store at %s (remote_write to %s)",
             client.url, client.write_url)
    return PrometheusMetricsStore(client, clock), PrometheusQuerier(client)


def engine_of(settings: Settings, store: MetricsStore) -> Querier:
    """The embedded PromQL engine over `store`, with the configured limits."""
    from dcops.query import Engine

    return Engine(store, max_samples=settings.query.max_samples,
                  lookback_delta_ms=round(settings.query.lookback_delta_s * 1000))


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Open the stores: state in the data directory (or the configured state URL), metrics
    embedded in the data directory or in the configured Prometheus-compatible store."""
    from dcops.backends.sql.state import open_state

    clock = clock or SystemClock()
    data_dir = settings.storage.resolved_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    metrics = _remote_metrics(settings, clock)
    state = open_state(settings.storage.resolved_state_url())
    if metrics is None:
        from dcops.backends.duckdb_store import DuckDBMetricsStore

        store = DuckDBMetricsStore(data_dir / "metrics", retention_of(settings),
                                   fsync=settings.storage.wal_fsync,
                                   flush_interval_s=settings.storage.flush_interval_s,
                                   clock=clock)
        metrics = (store, engine_of(settings, store))
    # journal writes leave the rule thread; closed (drained) before the database is
    journal = BufferedJournal(state.alerts, on_kick=True)
    manager = executor_of(settings, clock)
    # running jobs stop before the database they are saved in closes
    return _assemble(settings, clock, metrics, state, journal, manager,
                     [manager, journal, state], state_dir=data_dir / "detection")


def build_memory_services(settings: Settings, clock: Clock | None = None) -> Services:
    """State in process memory, metrics too unless settings select the prometheus backend:
    for tests."""
    from dcops.backends.sql.state import memory_state
    from dcops.telemetry.store import MemoryMetricsStore

    clock = clock or SystemClock()
    metrics = _remote_metrics(settings, clock)
    if metrics is None:
        store = MemoryMetricsStore(retention_of(settings))
        metrics = (store, engine_of(settings, store))
    state = memory_state()
    return _assemble(settings, clock, metrics, state, state.alerts,
                     memory_executor_of(settings), [])


def _assemble(settings: Settings, clock: Clock, metrics: tuple[MetricsStore, Querier],
              state: StateStore, journal: AlertJournal, manager: ClusterManager,
              closers: list[object], state_dir: Path | None = None) -> Services:
    from dcops.alerts.silences import Silences

    store, querier = metrics
    registry = CollectorRegistry()
    registrar = Registrar(state.inventory, state.audit, clock)
    ingestor = Ingestor(store, registry, on_node_seen=registrar.seen)
    rules = rules_of(settings, querier, ingestor, journal)
    silences = Silences(state.silences, state.audit)
    pipeline = pipeline_of(settings, clock, rules, silences, state, journal)
    jobs = jobs_of(settings, clock, manager, state.jobs)
    remediation = remediation_of(settings, clock, state, jobs, pipeline)
    if remediation is not None:
        ingestor.on_batch = remediation.ingest
    detection = detection_of(settings, clock, querier, ingestor, pipeline, state_dir)
    backup = backup_of(settings, clock, state, pipeline)
    if backup is not None:
        from dcops.backup.service import BackupCollector

        registry.register(BackupCollector(backup))
    return Services(settings, clock, store, querier, state.inventory, state.tokens,
                    state.audit, registry, ingestor, rules, journal, silences, pipeline,
                    jobs, remediation, detection, backup, _closers=closers)


def backup_policies(settings: Settings) -> list[BackupPolicy]:
    """The configured policies, and the control plane's own backup (of the configured rule
    files) unless switched off."""
    from dcops.backup.policy import BackupPolicy, control_plane_policy

    cfg = settings.backup
    policies = [BackupPolicy(p.name, tuple(str(x.expanduser()) for x in p.paths), p.every_s,
                             p.window_s, tuple(p.tags), tuple(p.excludes), dict(p.retention),
                             p.enabled) for p in cfg.policies]
    own = cfg.self_backup
    if own.enabled:
        rules = tuple(str(p.expanduser().absolute()) for p in settings.rules.paths)
        policies.append(control_plane_policy(own.every_s, rules, window_s=own.window_s,
                                             retention=dict(own.retention)))
    return policies


def open_backup_repository(settings: Settings) -> Repository:
    """The configured repository (a directory or s3: URL), opened with the password in
    `backup.password_file`."""
    from dcops.backup.keys import Credential
    from dcops.backup.repository import Repository
    from dcops.core.secret import Secret

    cfg = settings.backup
    if cfg.repository is None or cfg.password_file is None:
        raise Invalid("backups are not configured", where="backup.repository",
                      hint="set backup.repository and backup.password_file")
    path = cfg.password_file.expanduser()
    try:
        password = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise Invalid(f"cannot read the repository password: {exc.strerror}",
                      where="backup.password_file", hint=str(path)) from None
    return Repository.open(backup_storage(cfg.repository), Credential(password=Secret(password)))


def backup_of(settings: Settings, clock: Clock, state: StateStore,
              pipeline: Pipeline) -> BackupService | None:
    """The backup service over the configured repository, its runs recorded in the state
    store and audited, its alerts put into the alerting pipeline; None without a
    repository."""
    cfg = settings.backup
    if not cfg.enabled:
        return None
    import contextlib
    from collections.abc import Iterator

    from dcops.backends.sql.copy import state_copy
    from dcops.backup.policy import CONTROL_PLANE
    from dcops.backup.service import BackupService

    staging = settings.storage.resolved_data_dir() / "backup-staging" / CONTROL_PLANE

    @contextlib.contextmanager
    def control_plane(policy: BackupPolicy) -> Iterator[Sequence[Path]]:
        with state_copy(state.engine, staging, [Path(p) for p in policy.paths]) as paths:
            yield paths

    def put(alerts: Sequence[BackupAlert], now: float) -> None:
        pipeline.put([notified(a) for a in alerts], now)

    return BackupService(backup_policies(settings), lambda: open_backup_repository(settings),
                         state.backup_runs, clock, alerts=put, audit=state.audit,
                         prepare={CONTROL_PLANE: control_plane}, workers=cfg.workers,
                         tick_s=cfg.tick_s, location=cfg.repository or "",
                         restore_roots=cfg.restore_roots or [
                             settings.storage.resolved_data_dir() / "restores"])


def detection_of(settings: Settings, clock: Clock, querier: Querier, ingestor: Ingestor,
                 pipeline: Pipeline, state_dir: Path | None) -> DetectionService | None:
    """The configured detectors over the PromQL querier, their scores written through the
    ingestor and their alerts put into the alerting pipeline; their saved state (under
    `state_dir`) read back. None when switched off."""
    cfg = settings.detection
    if not cfg.enabled or not cfg.detectors:
        return None
    from dcops.detection.runner import Runner
    from dcops.detection.service import DetectionService
    from dcops.detection.spec import DetectorSpec

    runners = []
    for d in cfg.detectors:
        spec = DetectorSpec(d.name, d.kind, tuple(d.selectors), tuple(d.group_by),
                            None if d.entity_by is None else tuple(d.entity_by), d.threshold,
                            d.for_s, d.resolve_s, d.severity, d.rate, d.window_s,
                            d.interval_s, dict(d.params))
        runners.append(Runner(spec, querier, step_s=d.interval_s or cfg.interval_s,
                              delay_s=cfg.delay_s, backfill_s=cfg.backfill_s,
                              forget_after_s=cfg.forget_after_s))

    def put(alerts: Sequence[RaisedAlert], now: float) -> None:
        pipeline.put([notified(a) for a in alerts], now)

    service = DetectionService(runners, clock, lambda batch: ingestor.accept(batch, "detection"),
                               alerts=put, state_dir=state_dir,
                               interval_s=min(r.step_ms for r in runners) / 1000.0,
                               save_every_s=cfg.save_every_s)
    service.load()
    return service


def notified(alert: RaisedAlert | BackupAlert) -> NotifiedAlert:
    """A detection or backup alert as the alerting pipeline's alert."""
    from dcops.alerts.notifications import AlertStatus, NotifiedAlert

    status = AlertStatus.FIRING if alert.firing else AlertStatus.RESOLVED
    return NotifiedAlert(dict(alert.labels), dict(alert.annotations), status, alert.starts_at,
                         alert.ends_at)


def executor_of(settings: Settings, clock: Clock) -> ClusterManager:
    """The cluster manager `scheduling.executor` names: local processes or Slurm."""
    cfg = settings.scheduling
    if cfg.executor == "slurm":
        return _slurm_executor(settings, clock)
    from dcops.backends.local_executor import LocalExecutor

    local = cfg.local
    return LocalExecutor(settings.storage.resolved_data_dir() / "jobs", nodes=local.nodes,
                         gpus_per_node=local.gpus_per_node,
                         workdir=local.workdir.expanduser() if local.workdir else None,
                         grace_s=local.stop_grace_s, clock=clock)


def memory_executor_of(settings: Settings) -> ClusterManager:
    """A cluster manager of the local executor's nodes that runs nothing: for tests."""
    from dcops.backends.local_executor import local_nodes
    from dcops.scheduling.memory import MemoryClusterManager

    local = settings.scheduling.local
    return MemoryClusterManager(local_nodes(local.nodes, local.gpus_per_node))


def _slurm_executor(settings: Settings, clock: Clock) -> ClusterManager:
    import importlib

    try:
        module = importlib.import_module("dcops.backends.slurm")
        factory = module.SlurmExecutor
    except (ImportError, AttributeError):
        raise Invalid("the slurm executor is not part of this dcops build",
                      where="scheduling.executor", hint="use executor: local") from None
    cfg = settings.scheduling.slurm
    executor: ClusterManager = factory(slurm_conf=cfg.slurm_conf, bin_dir=cfg.bin_dir,
                                       partition=cfg.partition, output=cfg.output,
                                       timeout_s=cfg.timeout_s, clock=clock)
    return executor


def jobs_of(settings: Settings, clock: Clock, manager: ClusterManager,
            store: JobStore) -> JobService:
    """The scheduling service over `manager`, with the configured policy and tenants."""
    from dcops.scheduling.model import Tenant
    from dcops.scheduling.placers import placer
    from dcops.scheduling.service import JobService

    cfg = settings.scheduling
    tenants = [Tenant(t.name, t.gpu_quota, t.weight) for t in cfg.tenants]
    # a local job was stopped with the server and may resume; a Slurm one may still run
    return JobService(manager, clock, policy=cfg.policy, tenants=tenants, store=store,
                      requeue_running=cfg.executor == "local", placer=placer(cfg.placement))


def remediation_of(settings: Settings, clock: Clock, state: StateStore, jobs: JobService,
                   pipeline: Pipeline) -> RemediationService | None:
    """Health diagnosis over the ingested telemetry and remediation through the configured
    executor, notifying through the alerting pipeline; None when switched off."""
    cfg = settings.remediation
    if not cfg.enabled:
        return None
    from dcops.health.diagnose import Diagnoser
    from dcops.health.lemon import FLEET_INTERRUPTIONS, LemonScorer, fleet_rates
    from dcops.health.signals import TelemetrySignals
    from dcops.remediation.alerting import AlertNotifier
    from dcops.remediation.engine import Remediator
    from dcops.remediation.guardrails import Guardrails, GuardrailSettings
    from dcops.remediation.model import ActionKind
    from dcops.remediation.policy import RemediationPolicy
    from dcops.remediation.scheduler_actuator import SchedulerAtRisk
    from dcops.remediation.service import RemediationService, TelemetryRechecker

    modes: dict[str, str] = dict(cfg.modes)
    if cfg.executor == "none":  # diagnosis only: say what would be done
        modes = {kind.value: "notify-only" for kind in ActionKind}
    notifier = AlertNotifier(pipeline.put, clock)
    rechecker = TelemetryRechecker(quiet_s=cfg.recheck_quiet_s)

    counted = {"at": -math.inf, "nodes": 0}

    def fleet_nodes() -> int:
        """Nodes in the inventory or the scheduler, whichever knows more; recounted at
        most once a minute (the drain budget is a share of it)."""
        now = clock.now()
        if now - counted["at"] >= 60.0:
            counted["at"] = now
            counted["nodes"] = max(len(state.inventory.list_nodes()),
                                   len(jobs.scheduler.cluster.nodes))
        return int(counted["nodes"])

    remediator = Remediator(
        state.remediation, actuator_of(settings, jobs), clock=clock, fleet_nodes=fleet_nodes,
        policy=RemediationPolicy.from_settings(modes, cfg.playbooks, cfg.playbook_vars),
        guardrails=Guardrails(GuardrailSettings(**cfg.guardrails.model_dump())),
        audit=state.audit, notifier=notifier, rechecker=rechecker,
        playbooks=playbooks_of(settings, state), at_risk=SchedulerAtRisk(jobs))

    def gpu_model(node: str) -> str:
        try:
            return state.inventory.get_node(node).gpu_model
        except NotFound:
            return ""

    service = RemediationService(
        Diagnoser(), remediator, batch_signals=TelemetrySignals(), rechecker=rechecker,
        on_suspect=lambda node, suspect: jobs.set_node(node, suspect=suspect),
        new_diagnoser=Diagnoser, after_pass=notifier.tick,
        lemons=LemonScorer(fleet_rates(FLEET_INTERRUPTIONS).node_rate_per_day),
        gpu_model=gpu_model, unreachable_s=cfg.unreachable_s)
    remediator.listen(service.feedback)
    if cfg.executor == "scheduler":  # its node states live in memory: drains are restored
        remediator.restore_drains()
    return service


def actuator_of(settings: Settings, jobs: JobService) -> Actuator:
    """What carries remediation out: the scheduler, Slurm, or nothing."""
    cfg = settings.remediation
    if cfg.executor == "slurm":
        from dcops.backends.slurm_admin import DEFAULT_REBOOT, SlurmActuator

        slurm = settings.scheduling.slurm
        return SlurmActuator(slurm_conf=slurm.slurm_conf, bin_dir=slurm.bin_dir,
                             timeout_s=slurm.timeout_s,
                             reset_command=cfg.slurm.reset_command or None,
                             reboot_command=cfg.slurm.reboot_command or DEFAULT_REBOOT)
    if cfg.executor == "none":
        from dcops.remediation.memory import MemoryActuator

        return MemoryActuator([])
    from dcops.remediation.scheduler_actuator import SchedulerActuator

    return SchedulerActuator(jobs)


def playbooks_of(settings: Settings, state: StateStore) -> PlaybookRunner:
    """Ansible over an inventory made from dcops's own, with the configured playbooks (or
    the ones shipped with dcops)."""
    from dcops.backends.ansible import AnsibleRunner, inventory_from_nodes

    directory = settings.remediation.playbook_dir
    return AnsibleRunner(lambda: inventory_from_nodes(state.inventory.list_nodes()),
                         playbook_dir=directory.expanduser() if directory else None,
                         work_dir=settings.storage.resolved_data_dir() / "ansible")


def pipeline_of(settings: Settings, clock: Clock, rules: Rules, silences: Silences,
                state: StateStore, journal: AlertJournal) -> Pipeline:
    """The alerting pipeline over the state store, sending through the real receivers."""
    from dcops.alerts.outbox import RetryPolicy
    from dcops.alerts.pipeline import Pipeline
    from dcops.backends.notifiers import build_notifiers

    cfg = settings.notifications
    server = settings.server
    external = cfg.external_url or f"http://{server.host}:{server.port}"
    retry = cfg.retry
    return Pipeline(rules, silences, state.notification_log, state.outbox, build_notifiers,
                    clock, journal=journal,
                    config_file=cfg.config_file.expanduser() if cfg.config_file else None,
                    external_url=external,
                    policy=RetryPolicy(retry.initial_s, retry.max_s, retry.max_age_s),
                    after_round=journal.kick if isinstance(journal, BufferedJournal) else None)


def rules_of(settings: Settings, querier: Querier, ingestor: Ingestor,
             journal: AlertJournal | None = None) -> Rules:
    """The configured rule files (and the default pack), their results written through the
    ingestor as any other samples are."""
    from dcops.alerts.manager import RuleManager
    from dcops.alerts.pack import RULES
    from dcops.alerts.service import Rules

    paths = [*settings.rules.paths, *([RULES] if settings.rules.default_pack else [])]
    manager = RuleManager(querier, lambda batch: ingestor.accept(batch, "rules"), journal)
    return Rules([p.expanduser() for p in paths], manager)


def ensure_token_file(services: Services, filename: str, name: str, role: Role) -> Path:
    """Create a token and write it (mode 0600) to `filename` in the data dir, once.

    If the file exists and its token still verifies, it is kept as it is.
    """
    path = services.data_dir / filename
    if path.exists():
        secret = path.read_text().strip()
        if services.tokens.verify(secret, services.clock.now()) is not None:
            return path
        log.warning("token in %s no longer valid; creating a new one", path)
    _, secret = services.tokens.create(name, role, services.clock.now())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return path

