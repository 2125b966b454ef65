"""A real browser (Debian's chromium through chromedriver, driven by selenium) on the
dashboard of a real supervisor trading on the simulated exchange.

Selenium blocks, and the simulator serves from the test's event loop: every browser call
runs in a thread (``Browser``), so the exchange keeps answering while the browser waits.
Without chromium or chromedriver the browser tests are skipped, loudly.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exchange.sim.testing import SimHarness
from tests.supervisor.harness import ALPHAVOL, Deployment
from tests.supervisor.test_metrics import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = (
    "BROWSER TESTS SKIPPED: no chromium/chromedriver on this machine"
    " (apt-get install -y chromium chromium-driver; .ci/run installs them)"
)


class Browser:
    """A headless chromium; each call runs in a thread so the test's loop keeps serving."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def get(self, url: str) -> None:
        await self.call(self.driver.get, url)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.call(self.driver.execute_script, script, *args)

    async def until(self, script: str, within: float, what: str, *args: Any) -> Any:
        """Run ``script`` until it returns something truthy (every 0.1 s, at most
        ``within`` seconds); returns that."""
        deadline = time.monotonic() + within
        last = None
        while time.monotonic() < deadline:
            last = await self.js(script, *args)
            if last:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"the page never showed {what}; last={last!r}")

    async def size(self, width: int, height: int) -> None:
        await self.call(self.driver.set_window_size, width, height)

    async def screenshot(self, path: Path) -> None:
        assert await self.call(self.driver.save_screenshot, str(path))
        print(f"screenshot: {path}")

    async def source(self) -> str:
        return await self.call(lambda: self.driver.page_source)


def _start_chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM or ""
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,800",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


@pytest.fixture
async def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        warnings.warn(NO_BROWSER, stacklevel=1)
        pytest.skip(NO_BROWSER)
    driver = await asyncio.to_thread(_start_chromium, tmp_path / "chromium-profile")
    try:
        yield Browser(driver)
    finally:
        await asyncio.to_thread(driver.quit)


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0, volume_lag=0) as h:
        yield h


class Dash:
    """A deployment whose config serves the dashboard on a free loopback port."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_file = d.dir / "dashboard.token"

    def section(self, **more: Any) -> dict:
        return {
            "dashboard": {
                "listen": f"127.0.0.1:{self.port}",
                "token_file": str(self.token_file),
                **more,
            }
        }

    def write_token(self) -> str:
        res = subprocess.run(
            [ALPHAVOL, "dashboard", "token", str(self.token_file)], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        assert self.token_file.stat().st_mode & 0o777 == 0o600
        return self.token_file.read_text().strip()

    async def wait_listening(self, within: float = 20) -> None:
        async def up():
            try:
                async with aiohttp.ClientSession() as http, http.get(f"{self.url}/login") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await self.d.until(up, within, "the dashboard answering")


@pytest.fixture
async def dash(sim):
    made: list[Deployment] = []

    def make() -> Dash:
        d = Deployment(base_url=sim.base_url, ws_url=sim.ws_url)
        made.append(d)
        return Dash(d)

    yield make
    for d in made:
        d.cleanup()
