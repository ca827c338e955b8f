"""The Prometheus exposition formats: what an exporter's ``/metrics`` page says, as a Batch.

Both formats are read with prometheus_client's own parsers: the classic text format
(``text/plain; version=0.0.4``) and OpenMetrics (``application/openmetrics-text``).
Samples are stored under the names Prometheus stores them: a histogram becomes its
``_bucket``/``_sum``/``_count`` series, a summary its quantiles plus ``_sum``/``_count``,
an OpenMetrics counter its ``_total`` series; ``_created`` series are dropped, as
Prometheus does by default.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO, cast

from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_fd_to_metric_families

from dcops.core.errors import Invalid
from dcops.telemetry.model import Batch, labels_from_pairs

OPENMETRICS_TYPE = "application/openmetrics-text"
TEXT_TYPE = "text/plain"

# What the library's parsers raise on bad input; they are not all ValueError.
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError, AttributeError)
_CREATED_TYPES = {"counter", "histogram", "summary", "gaugehistogram"}


class _LineCounter:
    """Feeds lines to a parser and remembers which one it read last, to name a bad line."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text)
        self.line_no = 0
        self.line = ""
        self.counter_types: set[str] = set()

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.line_no += 1
            self.line = line.rstrip("\n")
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4 and parts[3] == "counter":
                    self.counter_types.add(parts[2])
            yield line


def is_openmetrics(content_type: str | None, text: str) -> bool:
    """Whether a page is OpenMetrics: by its Content-Type, or by its ``# EOF`` when untyped."""
    if content_type:
        return content_type.split(";")[0].strip().lower() == OPENMETRICS_TYPE
    return text.rstrip().endswith("# EOF")


def parse_exposition(
    text: str,
    *,
    content_type: str | None = None,
    default_ts_ms: int,
    extra_labels: Mapping[str, str] | None = None,
) -> Batch:
    """Parse one scraped page into a Batch.

    Samples without a timestamp get `default_ts_ms` (the scrape time). `extra_labels`
    (job, instance, target labels) are attached to every series; a scraped label of the
    same name is kept as ``exported_<name>``, as Prometheus does without honor_labels.
    Bad input raises Invalid naming the line.
    """
    openmetrics = is_openmetrics(content_type, text)
    fmt = "OpenMetrics" if openmetrics else "Prometheus text format"
    lines = _LineCounter(text)
    try:
        if openmetrics:
            parse = openmetrics_parser.text_fd_to_metric_families
            families = list(parse(lines))  # type: ignore[no-untyped-call]
        else:
            # The parser only iterates its input, so any iterable of lines will do.
            families = list(text_fd_to_metric_families(cast(TextIO, lines)))
    except _PARSE_ERRORS as exc:
        raise _invalid(fmt, lines, exc) from None
    batch = Batch()
    extra = dict(extra_labels or {})
    for family in families:
        for name, labels, value, ts_ms in _samples(family, openmetrics, lines.counter_types):
            pairs = _merge_labels(name, labels, extra)
            try:
                series = labels_from_pairs(pairs)
            except Invalid as exc:
                raise Invalid(exc.message, where=f"{fmt}: metric {name}") from None
            batch.add(series, default_ts_ms if ts_ms is None else ts_ms, value)
    return batch


def _invalid(fmt: str, lines: _LineCounter, exc: Exception) -> Invalid:
    detail = str(exc).strip() or "cannot parse"
    if lines.line_no == 0:
        return Invalid(detail, where=fmt)
    shown = lines.line if len(lines.line) <= 120 else lines.line[:117] + "..."
    return Invalid(
        f"{detail.split(':')[0]}: {shown!r}",
        where=f"{fmt} line {lines.line_no}",
        hint="check the exporter's output with promtool check metrics",
    )


def _samples(
    family: object, openmetrics: bool, counter_types: set[str]
) -> Iterable[tuple[str, dict[str, str], float, int | None]]:
    fam_name: str = getattr(family, "name", "")
    fam_type: str = getattr(family, "type", "unknown")
    for sample in getattr(family, "samples", []):
        if sample.native_histogram is not None:
            continue  # native histograms have no classic series to store
        name: str = sample.name
        if fam_type in _CREATED_TYPES and name == f"{fam_name}_created":
            continue
        if (
            not openmetrics
            and fam_type == "counter"
            and name == f"{fam_name}_total"
            and fam_name in counter_types
            and name not in counter_types
        ):
            name = fam_name  # the text parser appended _total to a counter declared without it
        ts = sample.timestamp
        ts_ms = None if ts is None else round(float(ts) * 1000)
        value = float(sample.value)
        yield name, dict(sample.labels), value, ts_ms


def _merge_labels(
    name: str, scraped: dict[str, str], extra: dict[str, str]
) -> list[tuple[str, str]]:
    pairs = [("__name__", name)]
    for key, value in scraped.items():
        if key in extra and extra[key] != "":
            key = f"exported_{key}"
        pairs.append((key, value))
    pairs.extend(extra.items())
    return pairs

