"""The exposition parser: Prometheus text format, OpenMetrics, and bad pages."""

from __future__ import annotations

import math

import pytest

from dcops.core.errors import Invalid
from dcops.telemetry.exposition import is_openmetrics, parse_exposition
from dcops.telemetry.model import Batch, Labels, make_labels

TS = 1_700_000_000_000
TARGET = {"job": "node", "instance": "gpu01:9100"}

TEXT_PAGE = """\
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1234.5
node_cpu_seconds_total{cpu="0",mode="user"} 99
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.42
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 3
http_request_duration_seconds_bucket{le="+Inf"} 5
http_request_duration_seconds_sum 1.5
http_request_duration_seconds_count 5
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.0001
go_gc_duration_seconds_sum 0.25
go_gc_duration_seconds_count 7
# TYPE legacy_requests counter
legacy_requests 3
stamped_metric{job="exporter-side"} 7 1700000005000
untyped_value NaN
"""

OPENMETRICS_PAGE = """\
# TYPE dcgm_xid counter
# HELP dcgm_xid Xid errors seen.
dcgm_xid_total{gpu="0"} 2
dcgm_xid_created{gpu="0"} 1700000000.0
# TYPE latency_seconds histogram
latency_seconds_bucket{le="1.0"} 1
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_count 2
latency_seconds_sum 3.5
latency_seconds_created 1700000000.0
# TYPE build info
build_info{version="1.2"} 1
# EOF
"""


def by_series(batch: Batch) -> dict[Labels, tuple[int, float]]:
    return {labels: (ts, value) for labels, ts, value in batch.samples()}


def series(name: str, **labels: str) -> Labels:
    return make_labels(name, {**TARGET, **labels})


def test_text_format_keeps_prometheus_series_names() -> None:
    got = by_series(parse_exposition(TEXT_PAGE, content_type="text/plain; version=0.0.4",
                                     default_ts_ms=TS, extra_labels=TARGET))
    assert got[series("node_cpu_seconds_total", cpu="0", mode="idle")] == (TS, 1234.5)
    assert got[series("node_cpu_seconds_total", cpu="0", mode="user")] == (TS, 99.0)
    assert got[series("node_load1")] == (TS, 0.42)
    assert got[series("http_request_duration_seconds_bucket", le="+Inf")] == (TS, 5.0)
    assert got[series("http_request_duration_seconds_sum")] == (TS, 1.5)
    assert got[series("http_request_duration_seconds_count")] == (TS, 5.0)
    assert got[series("go_gc_duration_seconds", quantile="0.5")] == (TS, 0.0001)
    assert got[series("go_gc_duration_seconds_count")] == (TS, 7.0)
    # A counter declared without _total is stored under its own name, as Prometheus does.
    assert got[series("legacy_requests")] == (TS, 3.0)
    assert series("legacy_requests_total") not in got
    assert len(got) == 13


def test_explicit_timestamps_and_clashing_labels() -> None:
    got = by_series(parse_exposition(TEXT_PAGE, content_type=None, default_ts_ms=TS,
                                     extra_labels=TARGET))
    stamped = series("stamped_metric", exported_job="exporter-side")
    assert got[stamped] == (1_700_000_005_000, 7.0)
    assert math.isnan(got[series("untyped_value")][1])


def test_openmetrics_counters_histograms_info() -> None:
    batch = parse_exposition(OPENMETRICS_PAGE,
                             content_type="application/openmetrics-text; version=1.0.0",
                             default_ts_ms=TS, extra_labels=TARGET)
    got = by_series(batch)
    assert got[series("dcgm_xid_total", gpu="0")] == (TS, 2.0)
    assert got[series("latency_seconds_bucket", le="1.0")] == (TS, 1.0)
    assert got[series("latency_seconds_sum")] == (TS, 3.5)
    assert got[series("build_info", version="1.2")] == (TS, 1.0)
    names = {dict(labels)["__name__"] for labels in got}
    assert not any(name.endswith("_created") for name in names)
    assert len(got) == 6


def test_openmetrics_is_detected_without_content_type() -> None:
    assert is_openmetrics(None, OPENMETRICS_PAGE)
    assert not is_openmetrics(None, TEXT_PAGE)
    assert is_openmetrics("application/openmetrics-text; version=0.0.1", "")
    assert len(parse_exposition(OPENMETRICS_PAGE, default_ts_ms=TS)) == 6


@pytest.mark.parametrize(
    ("page", "line"),
    [
        ("a 1\nb 2\nc{x=unquoted} 3\nd 4\n", 3),
        ("# TYPE a gauge\na not-a-number\n", 2),
        ("ok 1\n9starts_with_digit 1\n", 2),
        ("ok 1\nbroken{a=\"1\" 2\n", 2),
    ],
)
def test_malformed_text_names_the_line(page: str, line: int) -> None:
    with pytest.raises(Invalid) as caught:
        parse_exposition(page, content_type="text/plain", default_ts_ms=TS)
    assert caught.value.where == f"Prometheus text format line {line}"
    assert page.splitlines()[line - 1] in str(caught.value)


def test_malformed_openmetrics_names_the_line() -> None:
    page = "# TYPE a gauge\na 1\n\n# EOF\n"
    with pytest.raises(Invalid) as caught:
        parse_exposition(page, content_type="application/openmetrics-text", default_ts_ms=TS)
    assert caught.value.where == "OpenMetrics line 3"
    assert "blank line" in caught.value.message


def test_openmetrics_without_eof_is_invalid() -> None:
    with pytest.raises(Invalid, match="EOF"):
        parse_exposition("a 1\n", content_type="application/openmetrics-text",
                         default_ts_ms=TS)


def test_empty_page_is_an_empty_batch() -> None:
    assert len(parse_exposition("", content_type="text/plain", default_ts_ms=TS)) == 0
