"""One account's network route: an HTTP or SOCKS5 proxy, written as a URL.

``http://user:pass@host:port`` goes through aiohttp's own proxy support (``proxy=``, for
REST and the user stream alike); ``socks5://`` (the proxy resolves names: ``socks5h://``)
through aiohttp-socks' connector. The password is a secret: ``Proxy.shown`` is the URL
with it masked, the only form that may appear in a log, status, error or CLI output, and
``secret_values()`` hands it to the redactor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

SCHEMES = ("http", "socks5", "socks5h")
MASK = "***"


class ProxyUrlError(ValueError):
    """A proxy URL we cannot use; the message never contains the password."""


@dataclass(frozen=True)
class Proxy:
    scheme: str  # http | socks5 | socks5h
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def socks(self) -> bool:
        return self.scheme.startswith("socks")

    @property
    def url(self) -> str:
        """The full URL, password included: only for the connection itself."""
        return f"{self.scheme}://{self._userinfo(self.password)}{self._hostport}"

    @property
    def shown(self) -> str:
        """The URL with the password masked: what errors and status show."""
        return f"{self.scheme}://{self._userinfo(MASK if self.password else None)}{self._hostport}"

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r})"

    __str__ = __repr__

    @property
    def _hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _userinfo(self, password: str | None) -> str:
        if self.username is None:
            return ""
        user = quote(self.username, safe="")
        if password is None:
            return f"{user}@"
        return f"{user}:{password if password == MASK else quote(password, safe='')}@"

    def secret_values(self) -> list[str]:
        """The password, and the URL that contains it, for the log redactor."""
        if not self.password:
            return []
        return [self.password, quote(self.password, safe=""), self.url]

    @property
    def request_proxy(self) -> str | None:
        """What aiohttp's ``proxy=`` takes for every request and ``ws_connect`` (HTTP)."""
        return None if self.socks else self.url

    def connector(self) -> Any:
        """The connector of an ``aiohttp.ClientSession`` that routes through this SOCKS5
        proxy (None for an HTTP proxy: aiohttp's ``proxy=`` does that)."""
        if not self.socks:
            return None
        from aiohttp_socks import ProxyConnector, ProxyType

        return ProxyConnector(
            proxy_type=ProxyType.SOCKS5,
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            rdns=self.scheme == "socks5h",
        )


def parse_proxy(text: str) -> Proxy:
    """A proxy URL -> ``Proxy``; ``ProxyUrlError`` (naming the problem, never the
    password) when it is not ``http://`` or ``socks5://`` with a host and a port."""
    if not isinstance(text, str) or not text.strip():
        raise ProxyUrlError("expected a proxy URL such as socks5://user:pass@host:1080")
    raw = text.strip()
    if "://" not in raw:
        raise ProxyUrlError(f"must start with {' or '.join(s + '://' for s in SCHEMES)}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ProxyUrlError("the port must be a number from 1 to 65535") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        want = " or ".join(f"{s}://" for s in SCHEMES)
        raise ProxyUrlError(f"the scheme {scheme!r} is not supported; use {want}")
    if not parts.hostname:
        raise ProxyUrlError("the host is missing (scheme://[user:pass@]host:port)")
    if port is None:
        raise ProxyUrlError(f"the port is missing (scheme://[user:pass@]{parts.hostname}:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProxyUrlError("a proxy URL has no path or query (scheme://[user:pass@]host:port)")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(scheme, parts.hostname, port, username or None, password)


def shown(text: str | None) -> str | None:
    """A proxy URL as it may be shown (password masked); None stays None."""
    if text is None:
        return None
    try:
        return parse_proxy(text).shown
    except ProxyUrlError:
        return "(an unusable proxy URL)"
