"""The detection service: every configured detector, run continuously in the server.

Each tick, every `Runner` reads the steps that became ready through the PromQL engine,
scores them, and the service writes the scores back as ``dcops_anomaly_score`` series
through the normal write path (so PromQL, rules, Grafana and the dashboard read them like
any series) and hands the alerts to the alerting pipeline, where the same routes,
silences, inhibitions and receivers apply. Each detector's state is saved under the data
directory every `save_every_s` and when the service stops, and read back when it starts:
a restarted control plane carries on instead of learning again. A damaged or outdated
state file is logged and its detector starts afresh.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from dcops.core.clock import Clock
from dcops.core.errors import DcopsError
from dcops.core.raised import RaisedAlert
from dcops.detection.alerting import AnomalyAlert
from dcops.detection.model import load_state, save_state
from dcops.detection.runner import Latest, Runner
from dcops.detection.selection import SCORE_METRIC
from dcops.telemetry.model import Batch

log = logging.getLogger(__name__)




class LabelMatcher(Protocol):
    """A condition on labels: `dcops.telemetry.model.Matcher` or an alert matcher."""

    def matches(self, labels: Mapping[str, str]) -> bool: ...


Write = Callable[[Batch], object]
AlertSink = Callable[[Sequence[RaisedAlert], float], None]


class DetectionService:
    """The runners, behind one lock, with the loop that ticks them."""

    def __init__(self, runners: Sequence[Runner], clock: Clock, write: Write, *,
                 alerts: AlertSink | None = None, state_dir: Path | None = None,
                 interval_s: float = 30.0, save_every_s: float = 300.0) -> None:
        names = [r.spec.name for r in runners]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique: {names}")
        self.runners = list(runners)
        self.clock = clock
        self.write = write
        self.alerts = alerts
        self.state_dir = state_dir
        self.interval_s = interval_s
        self.save_every_s = save_every_s
        self.saved_at: float | None = None
        self._lock = threading.RLock()

    # -- the loop -------------------------------------------------------------------------

    def tick(self) -> int:
        """Tick every runner; returns how many score samples were written."""
        written = 0
        for runner in self.runners:
            now = self.clock.now()
            try:
                with self._lock:
                    outcome = runner.tick(now)
            except DcopsError as exc:
                log.warning("detector %s could not read its series: %s", runner.spec.name, exc)
                continue
            except Exception:  # one broken detector must not stop the others
                log.exception("detector %s failed", runner.spec.name)
                runner.last_error = "internal error; see the server log"
                continue
            if len(outcome.samples):
                self.write(outcome.samples)
                written += len(outcome.samples)
            if outcome.alerts and self.alerts is not None:
                self.alerts([self._raised(runner, a) for a in outcome.alerts], now)
        return written

    def run(self, stop: threading.Event) -> None:
        """Tick every `interval_s` and save every `save_every_s` until `stop`; save then."""
        self.saved_at = self.clock.now()
        while not stop.is_set():
            try:
                self.tick()
                if self.clock.now() - (self.saved_at or 0.0) >= self.save_every_s:
                    self.save()
            except Exception:
                log.exception("detection tick failed; next in %.0f s", self.interval_s)
            stop.wait(self.interval_s)
        self.save()

    def close(self) -> None:
        self.save()

    # -- saved state ----------------------------------------------------------------------

    def _path(self, runner: Runner) -> Path | None:
        return None if self.state_dir is None else self.state_dir / f"{runner.spec.name}.npz"

    def save(self) -> None:
        """Every detector's state to its file (each written atomically)."""
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for runner in self.runners:
            path = self._path(runner)
            assert path is not None  # a state_dir was given
            try:
                with self._lock:
                    state = runner.state()
                save_state(state, path)
            except (OSError, ValueError) as exc:
                log.error("detector %s: state not saved to %s: %s", runner.spec.name, path, exc)
        self.saved_at = self.clock.now()

    def load(self) -> None:
        """Each detector's saved state, where there is one that fits."""
        for runner in self.runners:
            path = self._path(runner)
            if path is None or not path.exists():
                continue
            try:
                state = load_state(path)
                with self._lock:
                    runner.restore(state)
            except DcopsError as exc:
                log.warning("detector %s starts afresh: %s", runner.spec.name, exc)
                continue
            log.info("detector %s carries on from %s (%d series)", runner.spec.name, path,
                     len(runner.seen))

    # -- questions ------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """What runs, on how many series, and how its last tick went."""
        with self._lock:
            return [_status(r) for r in self.runners]

    def scores(self, matchers: Sequence[LabelMatcher] = (), *, detector: str | None = None,
               min_score: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest score of each series matching `matchers` (over the labels of its
        ``dcops_anomaly_score`` series), highest first, with what explains it."""
        found = []
        with self._lock:
            for runner in self.runners:
                if detector is not None and runner.spec.name != detector:
                    continue
                firing = runner.tracker.firing()
                for key, latest in runner.latest.items():
                    labels = _score_labels(runner, latest)
                    if latest.score >= min_score and all(m.matches(labels) for m in matchers):
                        found.append(_score_view(runner, latest, labels, key in firing))
        found.sort(key=lambda s: (-s["score"], s["detector"], sorted(s["labels"].items())))
        return found[:limit]

    # -- alerts ---------------------------------------------------------------------------

    def _raised(self, runner: Runner, alert: AnomalyAlert) -> RaisedAlert:
        spec = runner.spec
        latest = runner.latest.get(alert.key)
        own = {str(k): str(v) for k, v in json.loads(alert.key)}  # the entity's labels
        labels = {**own, "alertname": runner.kind.alertname, "detector": spec.name,
                  "severity": spec.severity, "source": "detection"}
        what = ", ".join(f"{k}={v}" for k, v in sorted(own.items())) or "series"
        prediction = _predicted(latest)
        summary = f"{what}: {prediction}" if prediction \
            else f"{what}: anomaly score {alert.score:.2f} from detector {spec.name} " \
                 f"({spec.kind})"
        annotations = {"summary": summary, "score": f"{alert.score:.3f}",
                       "threshold": f"{spec.threshold:g}"}
        if latest is not None:
            annotations["metrics"] = explain_text(latest)
        if not alert.firing:
            annotations["resolution"] = alert.reason
        return RaisedAlert(labels, annotations, alert.firing, alert.starts_at, alert.ends_at)


def _predicted(latest: Latest | None) -> str:
    """What a forecasting detector predicts, in words ("disk full in 5 h"); "" otherwise."""
    if latest is None or not latest.details:
        return ""
    return str(latest.details[0].get("prediction", ""))


def explain_text(latest: Latest) -> str:
    """The top explaining metrics in one line: how far from peers where known."""
    prediction = _predicted(latest)
    if prediction:
        return prediction
    if latest.details:
        return "; ".join(f"{d['metric']} {d['sigma']:+.1f} sigma from {d['peers']} peers' "
                         f"median {d['peer_median']:.4g} (value {d['value']:.4g})"
                         for d in latest.details[:3])
    return ", ".join(f"{name} {share:.0%}" for name, share in latest.explanation.top(3))


def _score_labels(runner: Runner, latest: Latest) -> dict[str, str]:
    return {**latest.entity.labels, "__name__": SCORE_METRIC, "detector": runner.spec.name}


def _score_view(runner: Runner, latest: Latest, labels: dict[str, str],
                firing: bool) -> dict[str, Any]:
    return {"detector": runner.spec.name, "kind": runner.spec.kind,
            "labels": {k: v for k, v in labels.items() if k != "__name__"},
            "score": latest.score, "at": latest.at, "firing": firing,
            "threshold": runner.spec.threshold,
            "explanation": [{"metric": m, "share": s} for m, s in latest.explanation.top(5)],
            "deviations": latest.details, "summary": explain_text(latest)}


def _status(runner: Runner) -> dict[str, Any]:
    spec = runner.spec
    return {"name": spec.name, "kind": spec.kind, "shape": runner.kind.shape,
            "selectors": list(spec.selectors), "queries": [c.query for c in runner.columns],
            "group_by": list(spec.group_by), "threshold": spec.threshold,
            "for_s": spec.for_s, "interval_s": runner.step_ms / 1000.0,
            "series": len(runner.seen), "firing": len(runner.tracker.firing()),
            "last_tick_at": runner.last_tick_at,
            "last_step_at": None if runner.last_ms is None else runner.last_ms / 1000.0,
            "last_tick_s": runner.last_tick_s, "ticks": runner.ticks,
            "last_error": runner.last_error}
