"""Wiring builds the metrics backend the settings select, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.backends.prometheus import PrometheusMetricsStore
from dcops.backends.prometheus_http import PrometheusQuerier
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid
from dcops.query import Engine
from dcops.settings import parse_settings
from dcops.wiring import build_services


def test_embedded_metrics_are_duckdb_answered_by_the_engine(tmp_path: Path) -> None:
    services = build_services(parse_settings({"storage": {"data_dir": str(tmp_path)}}))
    try:
        assert isinstance(services.store, DuckDBMetricsStore)
        assert isinstance(services.querier, Engine) and services.querier.store is services.store
        assert (tmp_path / "metrics").is_dir()
    finally:
        services.close()


def test_prometheus_metrics_share_one_client_and_leave_the_data_dir_alone(
        tmp_path: Path) -> None:
    token = tmp_path / "prom.token"
    token.write_text("s3cret\n")
    services = build_services(parse_settings({"storage": {
        "data_dir": str(tmp_path / "data"), "metrics_backend": "prometheus",
        "prometheus": {"url": "http://127.0.0.1:1/", "headers": {"X-Scope-OrgID": "t1"},
                       "authorization": {"credentials_file": str(token)}}}}))
    try:
        store, querier = services.store, services.querier
        assert isinstance(store, PrometheusMetricsStore)
        assert isinstance(querier, PrometheusQuerier) and querier.client is store.client
        assert store.client.write_url == "http://127.0.0.1:1/api/v1/write"
        assert store.client.http.headers["X-Scope-OrgID"] == "t1"
        assert store.clock is services.clock
        assert (tmp_path / "data" / "state.db").exists()
        assert not (tmp_path / "data" / "metrics").exists()
    finally:
        services.close()


def test_a_missing_token_file_stops_the_start(tmp_path: Path) -> None:
    settings = parse_settings({"storage": {
        "data_dir": str(tmp_path), "metrics_backend": "prometheus",
        "prometheus": {"url": "http://127.0.0.1:1",
                       "authorization": {"credentials_file": str(tmp_path / "nope")}}}})
    with pytest.raises(Invalid) as caught:
        build_services(settings)
    assert caught.value.where == str(tmp_path / "nope")


def test_query_limits_come_from_the_config(tmp_path: Path) -> None:
    from dcops.query import QueryError
    from dcops.telemetry.model import Batch, make_labels
    from dcops.wiring import build_memory_services

    services = build_memory_services(parse_settings({"query": {
        "max_samples": 10, "lookback_delta_s": 60}}))
    engine = services.querier
    assert isinstance(engine, Engine)
    assert (engine.max_samples, engine.lookback_delta_ms) == (10, 60_000)
    batch = Batch()
    for i in range(20):
        batch.add(make_labels("dcops_host_up", {"node": f"n{i}"}), 1_700_000_000_000, 1.0)
    services.store.append(batch)
    with pytest.raises(QueryError, match="too many samples"):
        engine.instant("dcops_host_up", 1_700_000_000_000)
    small = build_memory_services(parse_settings({"query": {"lookback_delta_s": 60}}))
    small.store.append(batch)
    assert len(small.querier.instant("dcops_host_up", 1_700_000_060_000).series) == 20
    assert small.querier.instant("dcops_host_up", 1_700_000_060_001).series == []
    small.close()
    services.close()


def test_the_local_executor_runs_jobs_in_the_data_dir(tmp_path: Path) -> None:
    from dcops.backends.local_executor import LocalExecutor

    services = build_services(parse_settings({"storage": {"data_dir": str(tmp_path)},
                                              "scheduling": {"local": {"nodes": 2}}}))
    try:
        manager = services.jobs.manager
        assert isinstance(manager, LocalExecutor)
        assert manager.jobs_dir == tmp_path / "jobs"
        assert services.jobs.capacity() == (0, 16)
    finally:
        services.close()


def test_the_slurm_executor_is_built_by_name_or_refused_clearly(tmp_path: Path) -> None:
    import importlib.util

    from dcops.wiring import executor_of

    settings = parse_settings({"storage": {"data_dir": str(tmp_path)},
                               "scheduling": {"executor": "slurm"}})
    if importlib.util.find_spec("dcops.backends.slurm") is None:
        with pytest.raises(Invalid, match="slurm executor is not part of this") as caught:
            executor_of(settings, FakeClock())
        assert caught.value.where == "scheduling.executor"
    else:
        assert type(executor_of(settings, FakeClock())).__name__ == "SlurmExecutor"
