"""Where a running supervisor's control socket is, found without trusting the whole config.

The control commands (``status``, ``stop``, ``start``, ``reload``, ``shutdown``) need only
``paths.runtime_dir``. An operator who is editing the config must not be locked out of the
running service by a half-written file, so the directory comes from, in order:

1. ``--runtime-dir DIR`` or ``$ALPHAVOL_RUNTIME_DIR``;
2. ``paths.runtime_dir`` of the config file, read leniently: any YAML, whatever the rest of
   the file says; on a YAML syntax error, the ``runtime_dir:`` line itself;
3. the default ``./var/run`` beside the config file;
4. but when no supervisor serves there (the config cannot be read, lost its ``paths:``, or
   names a directory being edited): where a supervisor started with this config file says
   it serves (``config.serving``, recorded at its start), if one still runs.

The config is never validated here: ``reload`` asks the supervisor, which rereads the file
and answers with every problem in it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from config.errors import ConfigError
from config.loader import DEFAULT_RUNTIME_DIR
from config.serving import Serving, serving_for
from config.source import MAX_CONFIG_BYTES, read_source
from protocol.addresses import CONTROL_SOCKET

RUNTIME_DIR_ENV = "ALPHAVOL_RUNTIME_DIR"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooLarge(Exception):
    pass


# `runtime_dir: /run/alphavol` in block style, or inside a flow mapping `{runtime_dir: x}`
_LINE_RE = re.compile(
    r"""(?m)(?:^|[{,])[ \t]*runtime_dir[ \t]*:[ \t]*(?P<q>["']?)(?P<v>[^"'#,}\n]*?)(?P=q)[ \t]*(?:[,}#]|$)"""
)


@dataclass(frozen=True)
class RuntimeDir:
    path: Path
    note: str | None = None  # said on stderr when the file had to be read leniently


@dataclass(frozen=True)
class _Named:
    """What the config file names as its runtime directory."""

    value: str  # ``paths.runtime_dir`` as written, stripped ("" when it names none)
    # why it was read from its line alone (a YAML syntax error, a file too large); None
    # when the file was parsed
    broken: str | None = None


def find_runtime_dir(config_path: str | Path, explicit: str | Path | None = None) -> RuntimeDir:
    """The runtime directory for the control commands (see the module docstring).

    Raises ``FileNotFoundError`` when there is no explicit directory, the config file
    does not exist and no supervisor started with it serves; ``OSError`` likewise when it
    cannot be read."""
    if explicit:
        return RuntimeDir(Path(os.path.expanduser(str(explicit))).resolve())
    path = Path(os.path.expanduser(str(config_path)))
    try:  # never an open that waits (a FIFO), never more than 1 MiB parsed
        if not path.exists():
            raise FileNotFoundError(str(config_path))
        text = read_source(path, str(config_path), lenient=True)
    except (FileNotFoundError, ConfigError) as exc:
        return _unreadable(path, config_path, exc)
    named = _named(path, config_path, text)
    p = Path(os.path.expanduser(named.value or DEFAULT_RUNTIME_DIR))
    where = (p if p.is_absolute() else path.resolve().parent / p).resolve()
    elsewhere = _serving_elsewhere(path, config_path, where, named)
    if elsewhere is not None:
        return elsewhere
    if named.broken is None:
        return RuntimeDir(where)
    found = (
        f"paths.runtime_dir read from its line ({named.value})" if named.value else "the default"
    )
    return RuntimeDir(where, f"{named.broken}; using {found}")


def _unreadable(
    path: Path, config_path: str | Path, exc: FileNotFoundError | ConfigError
) -> RuntimeDir:
    """No config to read (missing, or refused unread): where a supervisor started with it
    serves, else the default beside it (a missing file is raised)."""
    serving = serving_for(path)
    if serving is not None:
        why = f"{config_path} does not exist" if isinstance(exc, OSError) else str(exc)
        return _recorded(serving, why)
    if isinstance(exc, OSError):
        raise exc
    default = (path.resolve().parent / DEFAULT_RUNTIME_DIR).resolve()
    return RuntimeDir(default, f"{exc}; using the default runtime directory {default}")


def _named(path: Path, config_path: str | Path, text: str) -> _Named:
    """``paths.runtime_dir`` of the parsed file; of a file that does not parse (or is
    too large to), its ``runtime_dir:`` line."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:  # its first MiB: not worth parsing
            raise _TooLarge
        data = yaml.load(text, Loader=_LOADER)
    except (yaml.YAMLError, _TooLarge) as exc:
        mark = getattr(exc, "problem_mark", None)
        broken = f"{config_path}:{mark.line + 1}" if mark is not None else str(config_path)
        why = "is too large" if isinstance(exc, _TooLarge) else "has a YAML syntax error"
        match = _LINE_RE.search(text)
        return _Named(match.group("v").strip() if match else "", f"{broken}: the config {why}")
    paths = data.get("paths") if isinstance(data, dict) else None
    raw = paths.get("runtime_dir") if isinstance(paths, dict) else None
    return _Named(raw.strip() if isinstance(raw, str) else "")


def _serving_elsewhere(
    path: Path, config_path: str | Path, where: Path, named: _Named
) -> RuntimeDir | None:
    """When no supervisor serves in ``where``: the directory where one started with this
    config file serves, if one does (and it is another directory)."""
    if (where / CONTROL_SOCKET).exists():
        return None
    serving = serving_for(path)
    if serving is None or serving.runtime_dir == where:
        return None
    if named.broken is not None:
        return _recorded(serving, named.broken)
    if named.value:
        return _recorded(serving, f"no supervisor serves in {where}, the config's")
    return _recorded(serving, f"{config_path} names no paths.runtime_dir")


def _recorded(serving: Serving, why: str) -> RuntimeDir:
    return RuntimeDir(
        serving.runtime_dir,
        f"{why}; using {serving.runtime_dir}, where the supervisor started with this config"
        f" (pid {serving.pid}) serves",
    )
