"""The ``notify`` and ``metrics`` sections of the config (issue 13).

``notify.urls`` are Apprise URLs, and they are secrets: a Telegram URL carries the bot
token, a webhook URL its key. Every part of them that could be a token is registered with
``config.logsetup.add_secrets`` as soon as the config is read, so no log line, error or
CLI output can show it, and a problem with one is reported by its position
(``notify.urls[1]``), never by its text. Apprise itself is not imported here: ``alphavol
check`` asks it whether it understands each URL (``supervisor.notify.understood``).

``metrics.listen`` is ``HOST:PORT``; anything but a loopback address needs
``metrics.allow_remote: true`` (the metrics name the accounts and what they trade).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from decimal import Decimal
from typing import Any

from config import logsetup
from config.checker import ConfigChecker
from config.schema import Rule, check_value, describe
from config.settings import NOTIFY_EVENTS, MetricsSettings, NotifySettings

NOTIFY_RULES: dict[str, Rule] = {
    "timeout_seconds": Rule("float", lo=Decimal(0), lo_open=True, hi=Decimal(300)),
    "retries": Rule("int", lo=Decimal(1), hi=Decimal(10)),
}
# checked apart (lists); named here so that a misspelt key gets a did-you-mean
_NOTIFY_LISTS = {"urls": Rule("text"), "events": Rule("text")}
METRICS_RULES: dict[str, Rule] = {"listen": Rule("text"), "allow_remote": Rule("bool")}
_PORT = Rule("int", lo=Decimal(1), hi=Decimal(65535))

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.I)
_HOSTNAME_RE = re.compile(r"^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+)$", re.I)


def url_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL that may be a token: the URL itself, and every piece
    between its delimiters except host names, IP addresses and plain numbers (a chat id
    or a port: masking those would mask order ids in every log line)."""
    rest = url.split("://", 1)[-1]
    parts = [url]
    for piece in re.split(r"[/:@?&=#,]+", rest):
        if not piece or piece.isdigit() or _HOSTNAME_RE.match(piece) or _is_ip(piece):
            continue
        parts.append(piece)
    return parts


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def channel_label(index: int, url: str) -> str:
    """How a log line or the CLI names a channel: its position and scheme, and its host
    when that is a plain host name (a Telegram URL's "host" is its bot token)."""
    scheme, _, rest = url.partition("://")
    host = re.split(r"[/?#]", rest.rsplit("@", 1)[-1], maxsplit=1)[0]
    name = host.rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host
    shown = f"{scheme}://{host}" if _HOSTNAME_RE.match(name) or _is_ip(name) else f"{scheme}://"
    return f"#{index + 1} {shown}"


def apprise_plugin(url: str, asset: Any = None) -> Any:
    """Apprise's plugin object for ``url``, or None when Apprise does not understand it
    (imports Apprise: tens of MB; only for commands and the notification thread)."""
    import apprise

    try:
        return apprise.Apprise.instantiate(url, asset=asset) or None
    except Exception:  # an odd URL must not take the others down
        return None


def not_understood(urls: tuple[str, ...]) -> list[int]:
    """Positions of the URLs Apprise does not understand (``alphavol check``)."""
    return [i for i, url in enumerate(urls) if apprise_plugin(url) is None]


def notify_section(ctx: ConfigChecker, raw: Any) -> NotifySettings:
    """``notify:`` checked (problems go to ``ctx``, the loader's issue collector)."""
    path = ("notify",)
    if raw is None:
        return NotifySettings()
    if not isinstance(raw, dict):
        ctx.err(path, f"expected a mapping (urls, events), got {describe(raw)}")
        return NotifySettings()
    rest = {k: v for k, v in raw.items() if k not in _NOTIFY_LISTS}
    values = ctx.section(rest, path, {**NOTIFY_RULES, **_NOTIFY_LISTS})
    urls = _urls(ctx, raw.get("urls"), (*path, "urls"))
    if "events" in raw:
        values["events"] = _events(ctx, raw.get("events"), (*path, "events"))
    return NotifySettings(urls=urls, **values)


def _urls(ctx: ConfigChecker, raw: Any, path: tuple) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        ctx.err(path, f"expected a list of Apprise URLs, got {describe(raw)}")
        return ()
    out: list[str] = []
    for i, item in enumerate(raw):
        text = item.strip() if isinstance(item, str) else ""
        if text:
            logsetup.add_secrets(url_secrets(text))  # before anything can print it
        if not _SCHEME_RE.match(text):
            # never quote the value: it may hold a token
            ctx.err(
                (*path, i),
                "not an Apprise URL (SCHEME://..., e.g. tgram://BOT_TOKEN/CHAT_ID or"
                " json://host:port/path)",
            )
            continue
        out.append(text)
    return tuple(out)


def _events(ctx: ConfigChecker, raw: Any, path: tuple) -> tuple[str, ...]:
    if not isinstance(raw, list):
        ctx.err(path, f"expected a list of event names, got {describe(raw)}")
        return ()
    out: list[str] = []
    for i, item in enumerate(raw):
        name = str(item).strip().lower() if isinstance(item, str) else ""
        if name not in NOTIFY_EVENTS:
            close = difflib.get_close_matches(name, NOTIFY_EVENTS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            ctx.err(
                (*path, i),
                f"unknown event {describe(item)}{hint} (events: {', '.join(NOTIFY_EVENTS)})",
            )
        elif name not in out:
            out.append(name)
    return tuple(out)


def metrics_section(ctx: ConfigChecker, raw: Any) -> MetricsSettings:
    path = ("metrics",)
    if raw is None:
        return MetricsSettings()
    if not isinstance(raw, dict):
        ctx.err(path, f"expected a mapping (listen, allow_remote), got {describe(raw)}")
        return MetricsSettings()
    values = ctx.section(raw, path, METRICS_RULES)
    listen = values.get("listen")
    if listen is None:
        return MetricsSettings(allow_remote=values.get("allow_remote", False))
    host, sep, port = listen.rpartition(":")
    port_value, problem = check_value(int(port) if port.isdigit() else port, _PORT)
    if not sep or not host or problem:
        ctx.err((*path, "listen"), f"expected HOST:PORT (e.g. 127.0.0.1:9464), got {listen!r}")
        return MetricsSettings()
    settings = MetricsSettings(
        listen=f"{host}:{port_value}", allow_remote=values.get("allow_remote", False)
    )
    if not is_loopback(settings.host) and not settings.allow_remote:
        ctx.err(
            (*path, "listen"),
            f"{settings.host} is not a loopback address: the metrics name every account;"
            " set metrics.allow_remote: true to serve them there anyway",
        )
    return settings


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
