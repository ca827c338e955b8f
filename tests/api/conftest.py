"""A control plane behind FastAPI's test client, with one token per role.

`api` keeps everything in process memory; `backend_api` runs the same app once over the
in-memory metrics store and once over the ``prometheus`` backend, writing to and reading
from a real Prometheus of its own (state stays in memory either way).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from dcops.access.model import Role
from dcops.api.app import create_app
from dcops.core.clock import FakeClock
from dcops.settings import PrometheusSettings, Settings, StorageSettings
from dcops.wiring import Services, build_memory_services
from tests.fixtures.prometheus import PrometheusFactory


@dataclass
class Api:
    client: TestClient
    services: Services
    clock: FakeClock
    tokens: dict[Role, str]

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def running_api(settings: Settings) -> Iterator[Api]:
    """The app over services built from `settings`, its clock at 1_700_000_000 s."""
    clock = FakeClock(1_700_000_000.0)
    services = build_memory_services(settings, clock)
    tokens = {role: services.tokens.create(role.value, role, clock.now())[1] for role in Role}
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield Api(client, services, clock, tokens)
    services.close()


def prometheus_settings(url: str) -> Settings:
    """Settings selecting the prometheus metrics backend at `url`."""
    return Settings(storage=StorageSettings(metrics_backend="prometheus",
                                            prometheus=PrometheusSettings(url=url)))


@pytest.fixture
def api() -> Iterator[Api]:
    yield from running_api(Settings())


@pytest.fixture(params=["embedded", pytest.param("prometheus", marks=pytest.mark.engines)])
def backend_api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """The app over each metrics backend; the prometheus one has a Prometheus to itself."""
    settings = Settings()
    if request.param == "prometheus":
        factory: PrometheusFactory = request.getfixturevalue("prometheus_factory")
        settings = prometheus_settings(factory().url)
    yield from running_api(settings)
