"""Where a running supervisor's control socket is, found without trusting the whole config.

The control commands (``status``, ``stop``, ``start``, ``reload``, ``shutdown``) need only
``paths.runtime_dir``. An operator who is editing the config must not be locked out of the
running service by a half-written file, so the directory comes from, in order:

1. ``--runtime-dir DIR`` or ``$ALPHAVOL_RUNTIME_DIR``;
2. ``paths.runtime_dir`` of the config file, read leniently: any YAML, whatever the rest of
   the file says; on a YAML syntax error, the ``runtime_dir:`` line itself;
3. the default ``./var/run`` beside the config file.

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
from config.source import MAX_CONFIG_BYTES, read_source

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


def find_runtime_dir(config_path: str | Path, explicit: str | Path | None = None) -> RuntimeDir:
    """The runtime directory for the control commands (see the module docstring).

    Raises ``FileNotFoundError`` when there is no explicit directory and the config file
    does not exist, ``OSError`` when it cannot be read."""
    if explicit:
        return RuntimeDir(Path(os.path.expanduser(str(explicit))).resolve())
    path = Path(os.path.expanduser(str(config_path)))
    if not path.exists():
        raise FileNotFoundError(str(config_path))
    base = path.resolve().parent
    try:  # never an open that waits (a FIFO), never more than 1 MiB parsed
        text = read_source(path, str(config_path), lenient=True)
    except ConfigError as exc:
        default = (base / DEFAULT_RUNTIME_DIR).resolve()
        return RuntimeDir(default, f"{exc}; using the default runtime directory {default}")
    note = None
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:  # its first MiB: not worth parsing
            raise _TooLarge
        data = yaml.load(text, Loader=_LOADER)
        paths = data.get("paths") if isinstance(data, dict) else None
        raw = paths.get("runtime_dir") if isinstance(paths, dict) else None
    except (yaml.YAMLError, _TooLarge) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{config_path}:{mark.line + 1}" if mark is not None else str(config_path)
        match = _LINE_RE.search(text)
        raw = match.group("v").strip() if match else None
        found = f"paths.runtime_dir read from its line ({raw})" if raw else "the default"
        why = "is too large" if isinstance(exc, _TooLarge) else "has a YAML syntax error"
        note = f"{where}: the config {why}; using {found}"
    if not isinstance(raw, str) or not raw.strip():
        raw = DEFAULT_RUNTIME_DIR
    p = Path(os.path.expanduser(raw.strip()))
    return RuntimeDir((p if p.is_absolute() else base / p).resolve(), note)
