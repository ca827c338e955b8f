"""Foreground work and the housekeeping that waits for it."""

from __future__ import annotations

import threading

from dcops.core import foreground


def test_nothing_in_progress_is_quiet_at_once() -> None:
    assert not foreground.in_progress()
    assert foreground.wait_quiet(0.0)


def test_housekeeping_waits_until_the_last_busy_block_ends() -> None:
    events: list[str] = []
    outer_may_end, inner_done = threading.Event(), threading.Event()

    def work() -> None:
        with foreground.busy():
            with foreground.busy():  # blocks nest
                events.append("busy")
            inner_done.set()
            outer_may_end.wait(10)
            events.append("done")

    def housekeeper() -> None:
        result = foreground.wait_quiet(10)
        events.append(f"quiet {result}")

    worker = threading.Thread(target=work)
    worker.start()
    assert inner_done.wait(10) and foreground.in_progress()  # the outer block still holds
    waiter = threading.Thread(target=housekeeper)
    waiter.start()
    outer_may_end.set()
    worker.join(10)
    waiter.join(10)
    assert events == ["busy", "done", "quiet True"]
    assert not foreground.in_progress()


def test_housekeeping_goes_ahead_after_its_limit_or_when_stopped() -> None:
    stop = threading.Event()
    with foreground.busy():
        assert not foreground.wait_quiet(0.05)  # put off, not starved
        stop.set()
        assert not foreground.wait_quiet(10, stop)  # a stopping housekeeper does not wait
