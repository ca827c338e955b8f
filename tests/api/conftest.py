"""An in-memory control plane behind FastAPI's test client, with one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from dcops.access.model import Role
from dcops.api.app import create_app
from dcops.core.clock import FakeClock
from dcops.settings import Settings
from dcops.wiring import Services, build_memory_services


@dataclass
class Api:
    client: TestClient
    services: Services
    clock: FakeClock
    tokens: dict[Role, str]

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def api() -> Iterator[Api]:
    clock = FakeClock(1_700_000_000.0)
    services = build_memory_services(Settings(), clock)
    tokens = {role: services.tokens.create(role.value, role, clock.now())[1] for role in Role}
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield Api(client, services, clock, tokens)
    services.close()
