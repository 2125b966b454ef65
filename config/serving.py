"""Where a running supervisor serves, recorded per config file, so that the control
commands find it even when the config can no longer say (a half-edited file that lost its
``paths:`` section, a file that cannot be read).

At start the supervisor writes one small JSON record (its config file's absolute path, its
runtime directory, its pid) into a well-known per-user directory: ``$XDG_RUNTIME_DIR/alphavol``,
else ``$XDG_CACHE_HOME/alphavol``, else ``~/.cache/alphavol`` (0700; the record 0600). It
removes the record at a clean exit. A record whose pid is gone or whose control socket is
missing is stale: ignored, and removed when found. Writing is best effort: a supervisor
whose home is read-only (systemd's ``ProtectHome=``) runs on without one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from protocol.addresses import CONTROL_SOCKET

_PREFIX = "serving-"


@dataclass(frozen=True)
class Serving:
    config: Path  # the config file's absolute path
    runtime_dir: Path
    pid: int


def records_dir() -> Path:
    """The per-user directory the records live in (see the module docstring)."""
    xdg_runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if xdg_runtime and os.path.isabs(xdg_runtime):
        return Path(xdg_runtime) / "alphavol"
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "alphavol"


def _key(config_path: str | Path) -> Path:
    return Path(os.path.expanduser(str(config_path))).resolve()


def record_path(config_path: str | Path) -> Path:
    digest = hashlib.sha256(str(_key(config_path)).encode()).hexdigest()[:24]
    return records_dir() / f"{_PREFIX}{digest}.json"


def write_record(config_path: str | Path, runtime_dir: str | Path, pid: int) -> Path:
    """Record that ``pid`` serves in ``runtime_dir`` for this config file (atomically).
    Raises ``OSError`` when the directory cannot be written."""
    path = record_path(config_path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {"config": str(_key(config_path)), "runtime_dir": str(Path(runtime_dir).resolve())}
    tmp = path.with_name(f".{path.name}.{pid}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({**doc, "pid": pid}, fh)
    os.replace(tmp, path)
    return path


def remove_record(config_path: str | Path, pid: int) -> None:
    """Remove the record of this config file if it is ``pid``'s (a later supervisor's stays)."""
    found = _read(record_path(config_path))
    if found is not None and found.pid == pid:
        with contextlib.suppress(OSError):
            record_path(config_path).unlink()


def serving_for(config_path: str | Path) -> Serving | None:
    """The live record of a supervisor started with this config file, or None."""
    path = record_path(config_path)
    found = _read(path)
    if found is None or found.config != _key(config_path):
        return None
    if not _alive(found.pid) or not (found.runtime_dir / CONTROL_SOCKET).exists():
        with contextlib.suppress(OSError):
            path.unlink()  # stale: its supervisor is gone
        return None
    return found


def _read(path: Path) -> Serving | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Serving(Path(doc["config"]), Path(doc["runtime_dir"]), int(doc["pid"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed supervisor its parent has not
    reaped yet)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: existing is all we know
    return stat.rsplit(") ", 1)[-1][:1] != "Z"
