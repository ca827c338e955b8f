"""The whole alerting pipeline over a real state store and a real HTTP receiver: a rule
fires, its group waits, the webhook gets Alertmanager's JSON; a restart does not notify
again; a silence holds an alert back until it expires; the resolution is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.access.model import AuditRecord
from dcops.alerts.matchers import parse_matchers
from dcops.core.clock import FakeClock
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from dcops.wiring import Services, build_services
from tests.fixtures.recorder import Recorder

T0 = 1_700_000_100.0
RULES = """groups:
  - name: gpu
    interval: 15s
    rules:
      - alert: GpuTooHot
        expr: dcops_gpu_temperature_celsius > 85
        labels: {severity: page}
        annotations: {summary: "{{ $labels.node }} at {{ $value }} C"}
"""
NOTIFY = """route:
  receiver: ops
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: ops
    webhook_configs: [{url: "{url}/hook", send_resolved: true}]
"""


class Plant:
    """A control plane on disk that can be stopped and started again."""

    def __init__(self, tmp_path: Path, recorder: Recorder) -> None:
        (tmp_path / "rules.yml").write_text(RULES)
        (tmp_path / "notify.yml").write_text(NOTIFY.replace("{url}", recorder.url))
        self.settings = parse_settings({
            "storage": {"data_dir": str(tmp_path / "data")},
            "rules": {"paths": [str(tmp_path / "rules.yml")], "default_pack": False},
            "notifications": {"config_file": str(tmp_path / "notify.yml"),
                              "external_url": "http://dcops.test:9180"}})
        self.clock = FakeClock(T0)
        self.services = self.start()

    def start(self) -> Services:
        services = build_services(self.settings, self.clock)
        services.rules.reload()
        services.pipeline.load()
        return services

    def restart(self) -> None:
        self.services.close()
        self.services = self.start()

    def temperature(self, node: str, value: float) -> None:
        batch = Batch()
        batch.add(make_labels("dcops_gpu_temperature_celsius", {"node": node, "gpu": "0"}),
                  round(self.clock.now() * 1000), value)
        self.services.ingestor.accept(batch, "test")

    def at(self, t: float) -> None:
        """Move the clock to T0 + t, run the pipeline's loop step and deliver."""
        self.clock.set(T0 + t)
        self.services.pipeline.tick(self.clock.now())
        self.services.pipeline.deliver()


@pytest.fixture
def plant(tmp_path: Path, recorder: Recorder) -> Iterator[Plant]:
    made = Plant(tmp_path, recorder)
    yield made
    made.services.close()


def _bodies(recorder: Recorder) -> list[list[tuple[str, str]]]:
    return [[(a["labels"]["node"], a["status"]) for a in r.body["alerts"]]
            for r in recorder.received]


def test_fire_restart_silence_resolve(plant: Plant, recorder: Recorder) -> None:
    plant.temperature("n1", 90.0)
    plant.at(5)  # evaluated at T0 (aligned to 15 s): fires, its group waits 10 s
    assert recorder.received == []
    plant.at(15)
    (first,) = recorder.received
    assert first.path == "/hook" and first.body["version"] == "4"
    assert first.body["status"] == "firing" and first.body["receiver"] == "ops"
    assert first.body["groupLabels"] == {"alertname": "GpuTooHot"}
    assert first.body["externalURL"] == "http://dcops.test:9180"
    (alert,) = first.body["alerts"]
    assert alert["annotations"] == {"summary": "n1 at 90 C"}
    assert alert["generatorURL"].startswith("http://dcops.test:9180/api/v1/alerts/history")

    plant.restart()  # the same state store: the alert stays firing and is not re-sent
    plant.temperature("n1", 90.0)
    plant.at(30)
    plant.at(45)
    assert len(recorder.received) == 1

    silence = plant.services.silences.add(
        tuple(parse_matchers('node="n2"', "test")), T0, T0 + 200, "alice", "reboot", T0 + 46)
    plant.temperature("n1", 90.0)
    plant.temperature("n2", 95.0)
    plant.at(60)
    plant.at(75)  # the group's next flush: only n2 is new, and it is silenced
    assert len(recorder.received) == 1
    plant.services.silences.expire(silence.id, "alice", T0 + 100)
    plant.temperature("n1", 90.0)
    plant.temperature("n2", 95.0)
    plant.at(120)
    plant.at(135)
    assert _bodies(recorder)[1:] == [[("n1", "firing"), ("n2", "firing")]]

    plant.temperature("n1", 70.0)
    plant.temperature("n2", 70.0)
    plant.at(150)
    plant.at(195)
    assert _bodies(recorder)[2:] == [[("n1", "resolved"), ("n2", "resolved")]]
    events = plant.services.alert_journal.history(limit=100)
    notified = [(e.labels["node"], e.details["status"]) for e in reversed(events)
                if e.event == "notified"]
    assert notified == [("n1", "firing"), ("n1", "firing"), ("n2", "firing"),
                        ("n1", "resolved"), ("n2", "resolved")]
    assert {e.actor for e in events if e.event == "notified"} == {"receiver/ops"}
    audit = plant.services.audit.list(target=f"silence:{silence.id}")
    assert [a.action for a in reversed(audit)] == ["silence.create", "silence.expire"]
    assert all(isinstance(a, AuditRecord) for a in audit)


def test_a_notification_file_that_does_not_load_keeps_the_one_loaded(
        plant: Plant, tmp_path: Path) -> None:
    before = plant.services.pipeline.config
    (tmp_path / "notify.yml").write_text("route: {receiver: nobody}\nreceivers: []\n")
    plant.at(5)
    assert plant.services.pipeline.config is before
    assert "unknown receiver 'nobody'" in (plant.services.pipeline.last_error or "")


def test_a_flapping_alert_is_one_flapping_notification_until_it_settles(
        plant: Plant, recorder: Recorder) -> None:
    for k in range(12):  # over and under the threshold at every evaluation, 15 s apart
        plant.temperature("n1", 90.0 if k % 2 == 0 else 70.0)
        plant.at(5 + 15 * k)
    statuses = [[(a["status"], a["annotations"].get("dcops_status"))
                 for a in r.body["alerts"]] for r in recorder.received]
    # its group waited 10 s, by when it had resolved; then it flapped: one notification,
    # held while it flaps
    assert statuses == [[("firing", "flapping")]]
    for k in range(12, 40):  # then it stays cool: once steady, the resolution goes out
        plant.temperature("n1", 70.0)
        plant.at(5 + 15 * k)
    assert [[a["status"] for a in r.body["alerts"]] for r in recorder.received[1:]] == [
        ["resolved"]]
    events = [e.event for e in reversed(plant.services.alert_journal.history(limit=200))
              if e.event in ("flapping", "steady")]
    assert events == ["flapping", "steady"]


def test_a_notification_for_a_receiver_that_is_down_survives_a_restart(
        plant: Plant, recorder: Recorder) -> None:
    recorder.stop()  # the receiver is down when the alert fires
    plant.temperature("n1", 90.0)
    plant.at(5)
    plant.at(15)  # flushed into the outbox; the attempt fails and is retried later
    assert plant.services.pipeline.outbox.pending_count() == 1
    plant.restart()  # the outbox is in the state store
    recorder.start()
    plant.clock.set(T0 + 600)  # well past the next retry
    plant.services.pipeline.deliver()
    (got,) = recorder.received
    assert [a["labels"]["node"] for a in got.body["alerts"]] == ["n1"]
    assert plant.services.pipeline.outbox.pending_count() == 0
    plant.services.pipeline.deliver()
    assert len(recorder.received) == 1  # delivered once
    events = [e.event for e in plant.services.alert_journal.history()]
    assert events[0] == "notified"
