"""The outbox over a real webhook receiver that is down, then failing, then healthy."""

from __future__ import annotations

from dcops.alerts.outbox import Delivery, ItemState, MemoryOutbox, RetryPolicy
from dcops.alerts.receivers import WebhookConfig
from dcops.backends.webhook import WebhookNotifier
from dcops.core.clock import FakeClock
from tests.alerts.samples import T0, gpu_alert, notification
from tests.fixtures.recorder import Recorder


def test_a_receiver_that_comes_up_late_gets_the_notification_once() -> None:
    receiver = Recorder(statuses=[503, 503])  # not started yet: connection refused
    clock = FakeClock(T0)
    hook = WebhookNotifier(WebhookConfig(url=f"{receiver.url}/hook", timeout_s=5.0),
                           "oncall/webhook[0]")
    outbox = MemoryOutbox()
    delivery = Delivery({"oncall": [hook]}, clock, outbox, policy=RetryPolicy(jitter=0.0))
    delivery.enqueue(notification(gpu_alert("0")))
    key = ("n-1", "oncall/webhook[0]")
    timeline: list[tuple[float, str]] = []
    try:
        for step in range(40):
            if step == 4:
                receiver.start()  # up at t=2s, answering 503 twice
            for _, outcome in delivery.run_due():
                timeline.append((clock.now() - T0, outcome))
            clock.advance(0.5)
    finally:
        receiver.stop()
        hook.close()
    assert timeline == [(0, "retried"), (1, "retried"), (3, "retried"), (7, "retried"),
                        (15, "sent")]
    assert receiver.attempts == 3
    assert len(receiver.bodies()) == 1
    assert receiver.bodies()[0]["alerts"][0]["labels"]["gpu"] == "0"
    item = outbox.get(key)
    assert (item.state, item.attempts) == (ItemState.DELIVERED, 5)
    assert "unreachable" not in item.last_error and "503" in item.last_error
