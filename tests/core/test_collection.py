"""Collections held off while latency-bound work runs, and done when it ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dcops.core import collection


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations collected, as the collector reports them."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    yield seen
    gc.callbacks.remove(note)


def test_nothing_is_collected_inside_and_the_young_generations_are_after(
        collections: list[int]) -> None:
    assert gc.isenabled()
    with collection.deferred():
        assert not gc.isenabled()
        for _ in range(5):
            junk: list[list[int]] = [[] for _ in range(10 * gc.get_threshold()[0])]
            del junk
        assert collections == []
    assert gc.isenabled()
    assert collections == [1]


def test_nested_blocks_collect_once_when_the_outer_one_ends(collections: list[int]) -> None:
    with collection.deferred():
        with collection.deferred(0):
            pass
        assert not gc.isenabled() and collections == []
    assert gc.isenabled() and collections == [1]


def test_a_collector_switched_off_before_stays_off(collections: list[int]) -> None:
    gc.disable()
    try:
        with collection.deferred():
            pass
        assert not gc.isenabled() and collections == []
    finally:
        gc.enable()


def test_an_error_in_the_block_still_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError), collection.deferred():
        raise RuntimeError("boom")
    assert gc.isenabled()
