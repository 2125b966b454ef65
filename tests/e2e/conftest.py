"""End-to-end tests drive the installed `alphavol` command the way a user would: real
subprocesses, the simulated exchange as its own process, files in a temporary directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ALPHAVOL = str(Path(sys.executable).parent / "alphavol")


class SimProcess:
    """`alphavol sim --port 0` as a child process; stopped by pid, never by name."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [ALPHAVOL, "sim", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        urls = {}
        assert self.proc.stdout is not None
        while len(urls) < 2:
            line = self.proc.stdout.readline().decode()
            assert line, "alphavol sim exited before printing its URLs"
            key, _, value = line.strip().partition("=")
            urls[key] = value
        self.base_url, self.ws_url = urls["base_url"], urls["ws_url"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def sim_process() -> Iterator[SimProcess]:
    sim = SimProcess("--volume-lag", "0.2")
    try:
        yield sim
    finally:
        sim.stop()


def alphavol(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [ALPHAVOL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
