"""Reading the config where a slow file cannot stall anyone: the supervisor's reader.

``load_config`` (``config.loader``) is the one way a config is read and validated; the
CLI and the start of ``run`` call it directly (nothing else waits on them). A running
supervisor must keep sending Pings every second while it rereads the file (``alphavol
reload``, SIGHUP), and parsing YAML holds the interpreter for as long as it takes (a
thread would too: PyYAML keeps the GIL). So ``read_config_off_loop``:

1. checks the file at once, in the caller (``config.source.check_source``: a FIFO, a
   device or more than 1 MiB is refused without being opened);
2. runs ``load_config`` in a short-lived process of its own (``python -m config.reader
   PATH``), which writes the validated config, or its issues, as msgpack to stdout;
3. kills that process if it has not answered within ``deadline`` seconds.

The secrets the config holds (proxy passwords, notification URLs) are registered for
redaction again in the caller: the reader process registered them only in itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import msgspec

from config.errors import ConfigError, ConfigIssue
from config.loader import AppConfig, load_config
from config.source import MAX_CONFIG_BYTES, check_source, refused

READ_DEADLINE = 10.0  # seconds a reread may take; a 1 MiB file takes about 2 s


class _Answer(msgspec.Struct, kw_only=True):
    config: AppConfig | None = None
    issues: list[ConfigIssue] = []


async def read_config_off_loop(path: str | Path, *, deadline: float = READ_DEADLINE) -> AppConfig:
    """The validated config at ``path``, read and parsed in another process; raises
    ``ConfigError`` (every issue, or one saying why the file was refused or took too
    long). Never blocks the calling event loop for more than a ``stat``."""
    shown = str(path)
    check_source(path, shown)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "config.reader",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(deadline):
            out, _ = await proc.communicate()
    except TimeoutError:
        raise refused(
            shown,
            f"reading it took more than {deadline:g} s; refused (a config is at most"
            f" {MAX_CONFIG_BYTES:,} bytes and reads in about 2 s)",
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    try:
        answer = msgspec.msgpack.decode(out, type=_Answer)
    except msgspec.DecodeError:
        raise refused(shown, f"the config reader failed (exit status {proc.returncode})") from None
    if answer.config is None:
        raise ConfigError(
            answer.issues or [ConfigIssue(file=shown, path="", line=None, message="unreadable")]
        )
    register_secrets(answer.config)
    return answer.config


def register_secrets(cfg: AppConfig) -> None:
    """Register the secrets of a config read elsewhere, as ``load_config`` does."""
    from config.logsetup import add_secrets
    from config.service_sections import url_secrets
    from exchange.proxy import parse_proxy

    for url in cfg.proxies.values():
        add_secrets(parse_proxy(url).secret_values())
    for url in cfg.notify.urls:
        add_secrets(url_secrets(url))


def _main(argv: list[str]) -> int:
    """``python -m config.reader PATH``: the answer as msgpack on stdout."""
    try:
        answer = _Answer(config=load_config(argv[0]))
    except ConfigError as exc:
        answer = _Answer(issues=exc.issues)
    sys.stdout.buffer.write(msgspec.msgpack.encode(answer))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
