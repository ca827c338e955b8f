"""The outbox delivers each notification once per integration, retrying with backoff."""

from __future__ import annotations

import random

import pytest

from dcops.alerts.notifications import AlertStatus, Notification, from_json, to_json
from dcops.alerts.outbox import Delivery, ItemState, MemoryOutbox, RetryPolicy
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid, NotFound, Unavailable
from tests.alerts.samples import T0, gpu_alert, notification


class Scripted:
    """A notifier that fails as told, then succeeds; records what it was sent and when."""

    def __init__(self, name: str, clock: FakeClock, failures: list[Exception] | None = None,
                 ) -> None:
        self.name = name
        self.send_resolved = True
        self.clock = clock
        self.failures = list(failures or [])
        self.attempts: list[float] = []
        self.sent: list[str] = []

    def send(self, notification: Notification) -> None:
        self.attempts.append(self.clock.now() - T0)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notification.id)


def run_until(delivery: Delivery, clock: FakeClock, end_s: float, step_s: float = 0.5) -> None:
    while clock.now() - T0 <= end_s:
        delivery.run_due()
        clock.advance(step_s)


EXACT = RetryPolicy(jitter=0.0)


def test_retries_double_from_one_second_until_delivered_once() -> None:
    clock = FakeClock(T0)
    down = Scripted("oncall/webhook[0]", clock, [Unavailable("down")] * 4)
    delivery = Delivery({"oncall": [down]}, clock, policy=EXACT)
    assert delivery.enqueue(notification(gpu_alert("0"))) == 1
    assert delivery.enqueue(notification(gpu_alert("0"))) == 0  # the same id: once
    run_until(delivery, clock, 60)
    assert down.attempts == [0, 1, 3, 7, 15]
    assert down.sent == ["n-1"]
    assert delivery.outbox.pending_count() == 0
    assert delivery.counts == {("oncall/webhook[0]", "retried"): 4,
                               ("oncall/webhook[0]", "sent"): 1}


def test_each_integration_is_its_own_delivery() -> None:
    clock = FakeClock(T0)
    hook = Scripted("oncall/webhook[0]", clock, [Unavailable("down")])
    mail = Scripted("oncall/email[0]", clock)
    delivery = Delivery({"oncall": [hook, mail], "nobody": []}, clock, policy=EXACT)
    assert delivery.enqueue(notification(gpu_alert("0"))) == 2
    assert delivery.enqueue(notification(gpu_alert("0"), receiver="nobody")) == 0
    run_until(delivery, clock, 5)
    assert (hook.attempts, mail.attempts) == ([0, 1], [0])
    assert hook.sent == mail.sent == ["n-1"]


def test_invalid_gives_up_at_once() -> None:
    clock = FakeClock(T0)
    refused = Scripted("oncall/webhook[0]", clock, [Invalid("400 bad request")])
    outbox = MemoryOutbox()
    delivery = Delivery({"oncall": [refused]}, clock, outbox, policy=EXACT)
    delivery.enqueue(notification(gpu_alert("0")))
    run_until(delivery, clock, 30)
    assert refused.attempts == [0]
    item = outbox.get(("n-1", "oncall/webhook[0]"))
    assert (item.state, item.attempts, item.last_error) == \
        (ItemState.GAVE_UP, 1, "400 bad request")
    assert delivery.counts == {("oncall/webhook[0]", "failed"): 1}


def test_waits_are_capped_and_the_last_attempt_is_at_max_age() -> None:
    clock = FakeClock(T0)
    down = Scripted("oncall/webhook[0]", clock, [Unavailable("down")] * 100)
    policy = RetryPolicy(initial_s=1.0, max_s=8.0, max_age_s=40.0, jitter=0.0)
    outbox = MemoryOutbox()
    delivery = Delivery({"oncall": [down]}, clock, outbox, policy=policy)
    delivery.enqueue(notification(gpu_alert("0")))
    run_until(delivery, clock, 100)
    assert down.attempts == [0, 1, 3, 7, 15, 23, 31, 39, 40]
    item = outbox.get(("n-1", "oncall/webhook[0]"))
    assert item.state is ItemState.GAVE_UP
    assert item.done_at == T0 + 40
    assert "still failing after 40s: down" in item.last_error
    assert delivery.counts[("oncall/webhook[0]", "failed")] == 1


def test_jitter_shortens_waits_reproducibly_with_a_seeded_rng() -> None:
    policy = RetryPolicy(jitter=0.5)
    waits = [policy.delay_s(n, random.Random(7)) for n in (1, 2, 3, 20)]
    assert waits == [policy.delay_s(n, random.Random(7)) for n in (1, 2, 3, 20)]
    for wait, base in zip(waits, (1.0, 2.0, 4.0, 300.0), strict=True):
        assert base * 0.5 <= wait <= base


def test_an_unknown_receiver_or_a_notification_without_id_is_refused() -> None:
    delivery = Delivery({"oncall": []}, FakeClock(T0))
    with pytest.raises(NotFound, match="receiver 'ops'"):
        delivery.enqueue(notification(gpu_alert("0"), receiver="ops"))
    with pytest.raises(Invalid, match="needs an id"):
        delivery.enqueue(notification(gpu_alert("0"), id=""))


def test_an_integration_removed_from_the_config_gives_up() -> None:
    clock = FakeClock(T0)
    outbox = MemoryOutbox()
    first = Delivery({"oncall": [Scripted("oncall/webhook[0]", clock)]}, clock, outbox)
    first.enqueue(notification(gpu_alert("0")))
    again = Delivery({"oncall": []}, clock, outbox)
    assert again.run_due() == [(("n-1", "oncall/webhook[0]"), "failed")]


def test_notifications_round_trip_through_json() -> None:
    original = notification(gpu_alert("0"), gpu_alert("1", AlertStatus.RESOLVED, ends_at=T0),
                            gpu_alert("2", AlertStatus.NODATA))
    assert from_json(to_json(original)) == original
    with pytest.raises(Invalid, match="not a stored notification"):
        from_json('{"receiver": "x"}')
