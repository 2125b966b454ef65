"""The installed `alphavol` command as a user runs it: real subprocesses, real files, the
simulated exchange over real sockets (the ``sim`` and ``deploy`` fixtures of
tests/supervisor, which also start the real supervisor with stand-in children)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from tests.supervisor.conftest import deploy, sim  # noqa: F401  (fixtures)
from tests.supervisor.harness import ALPHAVOL

__all__ = ["ALPHAVOL", "alphavol", "clean_env", "fake_distribution"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any alphavol or systemd setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALPHAVOL", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG"))
    }
    env.update(extra)
    return env


async def alphavol(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    within: float = 30,
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """``alphavol ARGS`` in a thread (the sim in this event loop keeps serving)."""
    return await asyncio.to_thread(
        subprocess.run,
        [*prefix, ALPHAVOL, *args],
        capture_output=True,
        text=True,
        timeout=within,
        env=env if env is not None else clean_env(),
        cwd=cwd,
    )


def fake_distribution(site: Path, package: str, name: str, version: str) -> Path:
    """What `pip install NAME` leaves: the package and a dist-info whose RECORD owns it."""
    (site / package).mkdir(parents=True, exist_ok=True)
    init = site / package / "__init__.py"
    init.write_text(f'"""{name}: not alphavol."""\n')
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{package}/__init__.py,,\n{info.name}/RECORD,,\n")
    return init
