"""ZeroMQ endpoints. All live inside the runtime directory, created with mode 0700, so only
the service's own user can reach them."""

from __future__ import annotations

import os
from pathlib import Path

EVENTS_SOCKET = "events.ipc"  # supervisor ROUTER <- user process DEALERs
CONTROL_SOCKET = "control.ipc"  # supervisor ROUTER <- CLI


def ensure_runtime_dir(runtime_dir: Path) -> Path:
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(runtime_dir, 0o700)
    return runtime_dir


def events_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir / EVENTS_SOCKET}"


def control_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir / CONTROL_SOCKET}"
