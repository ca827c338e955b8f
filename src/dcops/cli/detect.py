"""`dcops detect ...`: the anomaly detectors a server runs, their latest scores, and the
public benchmarks that measure them (offline).

    dcops detect status
    dcops detect scores ['{node="node-01-02"}'] [--detector NAME] [--min-score 0.5]
    dcops detect eval --benchmark nab|smd|forecast --data DIR [--report FILE]
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, out, table
from dcops.core.errors import Invalid

app = typer.Typer(help="Anomaly detection: detectors, scores, benchmarks.",
                  no_args_is_help=True)

BENCHMARKS: dict[str, tuple[str, ...]] = {
    "nab": ("data", "labels/combined_windows.json"),
    "smd": ("train", "test", "test_label"),
    "forecast": ("nab/data", "nab/labels/combined_windows.json", "smd/train", "smd/test"),
}
"""What each benchmark's --data directory must hold (forecast: the folder holding both)."""


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return f"{max(0.0, time.time() - seconds):.0f} s ago"


@app.command("status")
@friendly
def status(server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """What runs: each detector, how many series it scores, alerts firing, its last tick."""
    body = client(server, token_file).get("/api/v1/detection/detectors")
    if not body["enabled"]:
        out.print("anomaly detection is switched off (detection.enabled)", highlight=False)
        return
    rows = [{**d, "last tick": _ago(d["last_tick_at"]), "error": d["last_error"] or "",
             "interval": f"{d['interval_s']:g} s", "selectors": " ".join(d["selectors"])}
            for d in body["detectors"]]
    table(rows, ["name", "kind", "selectors", "series", "firing", "threshold", "interval",
                 "last tick", "error"], title="anomaly detectors")


@app.command("scores")
@friendly
def scores(selector: str | None = typer.Argument(
               None, help='series selector over the score labels, e.g. {node="node-01-02"}'),
           detector: str | None = typer.Option(None, "--detector", help="only this one"),
           min_score: float = typer.Option(0.0, "--min-score", min=0.0, max=1.0),
           limit: int = typer.Option(20, "--limit", min=1, max=10_000),
           server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """The latest anomaly scores, highest first, with what explains them."""
    params: dict[str, Any] = {"min_score": min_score, "limit": limit}
    if selector:
        params["selector"] = selector
    if detector:
        params["detector"] = detector
    body = client(server, token_file).get("/api/v1/detection/scores", params=params)
    rows = [{"detector": s["detector"],
             "series": ",".join(f"{k}={v}" for k, v in sorted(s["labels"].items())
                                if k != "detector"),
             "score": f"{s['score']:.3f}", "firing": "yes" if s["firing"] else "",
             "why": s["summary"]} for s in body["scores"]]
    table(rows, ["detector", "series", "score", "firing", "why"], title="anomaly scores")


@app.command("eval")
@friendly
def evaluate(benchmark: str = typer.Option(..., "--benchmark", "-b",
                                           help="nab, smd or forecast"),
             data: Path = typer.Option(..., "--data",
                                       help="the benchmark's data folder (forecast: the "
                                            "folder holding nab/ and smd/)"),
             report: Path | None = typer.Option(None, "--report",
                                                help="write the JSON report here")) -> None:
    """Run a public benchmark over dcops's detectors and print its figures."""
    if benchmark not in BENCHMARKS:
        raise Invalid(f"unknown benchmark {benchmark!r}; one of: {', '.join(BENCHMARKS)}",
                      where="--benchmark")
    check_data(benchmark, data)
    run = evaluator(benchmark)
    result = _with_progress(lambda progress: (
        run(data / "nab", data / "smd", progress=progress) if benchmark == "forecast"
        else run(data, progress=progress)))
    figures = result.to_dict()
    table(flatten(figures), ["figure", "value"], title=f"{benchmark} benchmark")
    if report is not None:
        report.write_text(json.dumps(figures, indent=2, sort_keys=True, default=str) + "\n")
        out.print(f"wrote {report}", highlight=False, markup=False, soft_wrap=True)


def check_data(benchmark: str, data: Path) -> None:
    """`Invalid` naming what the benchmark's data folder lacks."""
    if not data.is_dir():
        raise Invalid(f"no such data folder: {data}", where="--data")
    missing = [name for name in BENCHMARKS[benchmark] if not (data / name).exists()]
    if missing:
        raise Invalid(f"{data} does not hold the {benchmark} benchmark data: missing "
                      f"{', '.join(missing)}", where="--data",
                      hint="point --data at the benchmark's folder (see its README)")


def evaluator(benchmark: str) -> Callable[..., Any]:
    """`dcops.detection.eval.<benchmark>.evaluate`, or a clear error if it is not there."""
    module_name = f"dcops.detection.eval.{benchmark}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name in (module_name, None):
            raise Invalid(f"benchmark evaluator not installed: {module_name}",
                          hint="this dcops build does not include it") from None
        raise Invalid(f"benchmark evaluator {module_name} cannot load: {exc}",
                      hint="install what it needs") from None
    run = getattr(module, "evaluate", None)
    if not callable(run):
        raise Invalid(f"benchmark evaluator not installed: {module_name} has no evaluate()")
    return run  # type: ignore[no-any-return]


def _with_progress(work: Callable[[Callable[[str, int, int], None]], Any]) -> Any:
    from rich.progress import Progress, TaskID

    with Progress(console=out, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int) -> None:
            task = tasks.get(what)
            if task is None:
                task = tasks[what] = bar.add_task(what, total=max(total, 1))
            bar.update(task, completed=done, total=max(total, 1))

        return work(progress)


def flatten(figures: dict[str, Any], prefix: str = "", depth: int = 0) -> list[dict[str, str]]:
    """The report's numbers and words as (dotted name, value) rows; lists are counted."""
    rows: list[dict[str, str]] = []
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 2:
            rows += flatten(value, f"{name}.", depth + 1)
        elif isinstance(value, float):
            rows.append({"figure": name, "value": f"{value:.4g}"})
        elif isinstance(value, list | tuple | dict):
            rows.append({"figure": name, "value": f"{len(value)} items"})
        else:
            rows.append({"figure": name, "value": str(value)})
    return rows
