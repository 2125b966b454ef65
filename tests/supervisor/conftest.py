from __future__ import annotations

import pytest

from exchange.sim.testing import SimHarness
from tests.supervisor.harness import Deployment


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0, volume_lag=0) as h:
        yield h


@pytest.fixture
async def deploy(sim):
    made: list[Deployment] = []

    def make() -> Deployment:
        d = Deployment(base_url=sim.base_url, ws_url=sim.ws_url)
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()
