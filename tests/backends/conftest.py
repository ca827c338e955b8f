"""Fixtures of the backend tests: a recording HTTP receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backends.recorder import Recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A running HTTP receiver that records POSTs; stopped after the test."""
    server = Recorder()
    server.start()
    try:
        yield server
    finally:
        server.stop()
