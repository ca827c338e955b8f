"""The simulator's HTML report: one self-contained page (inline SVG and CSS, no scripts,
nothing fetched) with the summary table, the JCT CDF on a log axis, the queue length and
the GPU allocation over time, and each replay's tenants. Every text is escaped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from dcops.simulation.report import Report

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 44


@dataclass(frozen=True, slots=True)
class Line:
    """One series of a chart."""

    label: str
    x: Sequence[float]
    y: Sequence[float]


def line_chart(lines: Sequence[Line], *, x_label: str, y_label: str, log_x: bool = False,
               y_max: float | None = None) -> str:
    """An SVG chart of `lines` (with a legend); `log_x`: a log10 x axis (x <= 0 clipped to
    the smallest positive x)."""
    xs = [v for line in lines for v in line.x if not log_x or v > 0]
    ys = [v for line in lines for v in line.y]
    if not xs or not ys:
        return '<p class="empty">no data</p>'
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = 0.0, y_max if y_max is not None else max(max(ys), 1e-9)
    if log_x:
        x_lo, x_hi = 10 ** math.floor(math.log10(x_lo)), 10 ** math.ceil(math.log10(x_hi))
        if x_hi <= x_lo:
            x_hi = x_lo * 10
    elif x_hi <= x_lo:
        x_hi = x_lo + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(v: float) -> float:
        if log_x:
            f = (math.log10(max(v, x_lo)) - math.log10(x_lo)) / (
                math.log10(x_hi) - math.log10(x_lo))
        else:
            f = (v - x_lo) / (x_hi - x_lo)
        return LEFT + f * plot_w

    def sy(v: float) -> float:
        return TOP + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(y_label)}">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    x_ticks = _log_ticks(x_lo, x_hi) if log_x else _ticks(x_lo, x_hi)
    for v in x_ticks:
        x = sx(v)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" '
                     f'class="grid"/><text x="{x:.1f}" y="{TOP + plot_h + 16}" '
                     f'text-anchor="middle">{escape(_num(v))}</text>')
    for v in _ticks(y_lo, y_hi):
        y = sy(v)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(_num(v))}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text transform="rotate(-90)" x="{-(TOP + plot_h / 2):.0f}" y="14" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    for i, line in enumerate(lines):
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(line.x, line.y,
                                                                     strict=True)
                          if not log_x or x > 0)
        parts.append(f'<polyline points="{points}" fill="none" stroke-width="1.6" '
                     f'stroke="{COLORS[i % len(COLORS)]}"><title>{escape(line.label)}'
                     '</title></polyline>')
    parts.append("</svg>")
    return "".join(parts) + _legend(lines)


def render_html(reports: Sequence[Report], title: str) -> str:
    """The whole report page."""
    traces = sorted({r.trace for r in reports if r.trace})
    cdf = [Line(r.label, r.series.jct_s, r.series.cdf) for r in reports]
    hours = [Line(r.label, [t / 3600 for t in r.series.t_s], r.series.waiting_jobs)
             for r in reports]
    alloc = [Line(r.label, [t / 3600 for t in r.series.t_s],
                  [a / r.gpus if r.gpus else 0.0 for a in r.series.allocated_gpus])
             for r in reports]
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Trace: {escape(', '.join(traces) or 'unnamed')}; {len(reports)} replay(s).</p>",
        "<h2>Summary</h2>", _summary(reports),
        "<h2>Job completion time (CDF)</h2>",
        line_chart(cdf, x_label="JCT (s, log scale)", y_label="fraction of jobs", log_x=True,
                   y_max=1.0),
        "<h2>Queue length</h2>",
        line_chart(hours, x_label="trace time (h)", y_label="jobs waiting"),
        "<h2>GPU allocation</h2>",
        line_chart(alloc, x_label="trace time (h)", y_label="fraction of GPUs allocated",
                   y_max=1.0),
        "<h2>Tenants</h2>", *(_tenants(r) for r in reports),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


# -- pieces -------------------------------------------------------------------------------

Column = tuple[str, str, Callable[[Report], str]]



SUMMARY: tuple[Column, ...] = (
    ("label", "replay", lambda r: r.label),
    ("nodes", "nodes", lambda r: str(r.nodes)),
    ("jobs", "jobs done", lambda r: f"{r.completed:,}/{r.jobs:,}"),
    ("avg_jct_s", "avg JCT", lambda r: format_s(r.avg_jct_s)),
    ("p50_jct_s", "p50 JCT", lambda r: format_s(r.p50_jct_s)),
    ("p99_jct_s", "p99 JCT", lambda r: format_s(r.p99_jct_s)),
    ("avg_queue_s", "avg queue", lambda r: format_s(r.avg_queue_s)),
    ("p99_queue_s", "p99 queue", lambda r: format_s(r.p99_queue_s)),
    ("p999_queue_s", "p99.9 queue", lambda r: format_s(r.p999_queue_s)),
    ("makespan_s", "makespan", lambda r: format_s(r.makespan_s)),
    ("utilization", "util", lambda r: _pct(r.utilization)),
    ("goodput", "goodput", lambda r: _pct(r.goodput)),
    ("preemptions", "preempt", lambda r: f"{r.preemptions:,}"),
    ("faults", "faults", lambda r: f"{r.faults:,}"),
    ("restarts", "restarts", lambda r: f"{r.restarts:,}"),
    ("jain_index", "Jain", lambda r: _fixed(r.jain_index, 3)),
    ("wall_s", "wall", lambda r: f"{r.wall_s:.1f} s"),
)
"""The summary's columns: field, heading, and how a value reads (shared with the CLI)."""
COMPACT = ("label", "avg_jct_s", "p99_jct_s", "avg_queue_s", "p99_queue_s", "utilization",
           "goodput", "preemptions", "restarts", "jain_index")
"""The columns of a summary with a row per replay, for a terminal."""


def format_s(seconds: float) -> str:
    """A duration for people: 45 s, 12.5 min, 3.2 h, 4.1 d."""
    if not math.isfinite(seconds):
        return "-"
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%" if math.isfinite(v) else "-"


def _fixed(v: float, digits: int) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "-"


def _summary(reports: Sequence[Report]) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for _, name, _ in SUMMARY)
    rows = "".join("<tr>" + "".join(f"<td>{escape(show(r))}</td>" for _, _, show in SUMMARY)
                   + "</tr>" for r in reports)
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
            "</table></div>")


def _tenants(report: Report) -> str:
    rows = "".join(
        f"<tr><td>{escape(t.tenant)}</td><td>{t.jobs}</td><td>{format_s(t.avg_jct_s)}</td>"
        f"<td>{format_s(t.avg_queue_s)}</td><td>{_pct(t.gpu_s_share)}</td>"
        f"<td>{_fixed(t.mean_slowdown, 2)}</td></tr>" for t in report.tenants)
    return (f"<details><summary>{escape(report.label)}: {len(report.tenants)} tenants, "
            f"Jain index {_fixed(report.jain_index, 3)}</summary><table><thead><tr>"
            "<th>tenant</th><th>jobs</th><th>avg JCT</th><th>avg queue</th>"
            "<th>GPU-s share</th><th>mean slowdown</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>")


def _legend(lines: Sequence[Line]) -> str:
    items = "".join(f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>'
                    f"{escape(line.label)}</span>" for i, line in enumerate(lines))
    return f'<div class="legend">{items}</div>'


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    n = math.floor((hi - first) / step + 1e-9) + 1
    return [first + i * step for i in range(n)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0 ** k for k in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]


def _num(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-2):
        return f"{v:.0e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return f"{v:g}"


_CSS = ("body{font:14px system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
        "th:first-child,td:first-child{text-align:left}"
        "svg text{font-size:11px;fill:#333}.frame{fill:none;stroke:#999}"
        ".grid{stroke:#e5e5e5}.legend span{margin-right:14px;white-space:nowrap}"
        ".legend i{display:inline-block;width:12px;height:3px;margin-right:4px;"
        "vertical-align:middle}details{margin:6px 0}.wide{overflow-x:auto}")
