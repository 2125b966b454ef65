"""Shared helpers for the config tests: a made-up browser session and config files."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
import structlog

from exchange.auth import csrf_for

# A made-up session. Every value is long and distinctive so a leak is easy to find.
SESSION_COOKIES = {
    "p20t": "web.4242.SESSIONSECRETp20tVALUE0123456789",
    "cr00": "CR00SECRETVALUEABCDEF0123456789",
    "r20t": "web.R20TSECRETREFRESHVALUE987654",
    "logined": "y",
}
SESSION_HEADERS = {
    "csrftoken": csrf_for(SESSION_COOKIES["cr00"]),
    "bnc-uuid": "BNCUUIDSECRET-1111-2222-3333",
    "device-info": "DEVICEINFOSECRETeyJzY3JlZW4iOiIxOTIweDEwODAifQ==",
    "fvideo-token": "FVIDEOTOKENSECRETabcdefghijklmnop",
    "clienttype": "web",
}


def secret_values() -> list[str]:
    return [v for v in [*SESSION_COOKIES.values(), *SESSION_HEADERS.values()] if len(v) >= 6]


def bash_curl(cookies: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> str:
    cookies = SESSION_COOKIES if cookies is None else cookies
    headers = SESSION_HEADERS if headers is None else headers
    lines = [
        "curl 'https://www.binance.com/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume'"
    ]
    lines.append("  -H 'accept: */*'")
    lines.append("  -H 'content-type: application/json'")
    lines += [f"  -H '{k}: {v}'" for k, v in headers.items()]
    lines.append("  -b '" + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "'")
    lines.append("  -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36'")
    lines.append("  --compressed")
    return " \\\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ALPHAVOL_SECRET_KEY",
        "ALPHAVOL_SECRET_KEY_FILE",
        "CREDENTIALS_DIRECTORY",
        "ALPHAVOL_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging changes process-wide state; give the next test (maybe another
    part's) the logging it had, not a handler on a CliRunner stream that is closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    factory = logging.getLogRecordFactory()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.setLogRecordFactory(factory)
    structlog.reset_defaults()


MINIMAL = """\
strategies:
  - strategy_id: koge
    target_token: KOGE
    target_volume: 100
    user_ids: [1, 2]
"""


def write_config(directory: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_minimal(directory: Path, extra: str):
    """``MINIMAL`` plus ``extra``, loaded (the section tests' config)."""
    from config.loader import load_config

    return load_config(write_config(directory, MINIMAL + extra))


def refused(directory: Path, extra: str) -> list:
    """The issues of ``MINIMAL`` plus ``extra``, which must be refused."""
    from config.loader import ConfigError

    try:
        load_minimal(directory, extra)
    except ConfigError as exc:
        return exc.issues
    raise AssertionError("the config was accepted")
