"""A user's logged-in browser session: the cookies and headers copied from the browser.

Everything here is secret. ``Credentials`` never prints its values (``repr`` shows only
names), and ``secret_values()`` is what the log redactor masks.
"""

from __future__ import annotations

import hashlib

import msgspec

from exchange.proxy import ProxyUrlError, parse_proxy
from exchange.proxy import shown as proxy_shown

SESSION_COOKIE = "p20t"
CSRF_SOURCE_COOKIE = "cr00"
CSRF_HEADER = "csrftoken"

# Headers a browser sends that we keep from the user's copied request. Everything else
# (content-length, host, accept-encoding, x-trace-id ...) is produced per request.
KEPT_HEADERS = (
    "csrftoken",
    "clienttype",
    "bnc-uuid",
    "device-info",
    "fvideo-id",
    "fvideo-token",
    "user-agent",
    "lang",
    "bnc-location",
    "bnc-time-zone",
    "x-passthrough-token",
)


def csrf_for(cr00: str) -> str:
    """Binance's web csrftoken: the MD5 hex digest of the ``cr00`` cookie."""
    return hashlib.md5(cr00.encode(), usedforsecurity=False).hexdigest()


class Credentials(msgspec.Struct, frozen=True):
    """Cookies and headers of one account's browser session (names lower-cased for headers).

    ``proxy`` is the route the session is used through (an ``exchange.proxy`` URL: HTTP or
    SOCKS5, password included), set from the config's ``user_overrides[].proxy`` when the
    session is handed out (never stored with it), so that everything that uses this
    session (volume checks, the user process's REST calls and stream) takes that route."""

    cookies: dict[str, str]
    headers: dict[str, str]
    proxy: str | None = None

    def __repr__(self) -> str:  # never show values
        via = f", proxy={proxy_shown(self.proxy)!r}" if self.proxy else ""
        return (
            f"Credentials(cookies={sorted(self.cookies)!r}, headers={sorted(self.headers)!r}{via})"
        )

    __str__ = __repr__

    def routed(self, proxy: str | None) -> Credentials:
        """The same session, used through ``proxy`` (None: directly)."""
        return msgspec.structs.replace(self, proxy=proxy)

    def secret_values(self) -> list[str]:
        """Every value worth masking in logs (long enough to be unambiguous), the proxy's
        password included."""
        vals = [*self.cookies.values(), *self.headers.values()]
        if self.proxy:
            vals.extend(proxy_secrets(self.proxy))
        return sorted({v for v in vals if v and len(v) >= 6}, key=len, reverse=True)

    def problems(self) -> list[str]:
        """What is wrong with this session, in words that name the field, never its value."""
        out: list[str] = []
        if not self.cookies.get(SESSION_COOKIE):
            out.append(f"the session cookie {SESSION_COOKIE!r} is missing")
        cr00 = self.cookies.get(CSRF_SOURCE_COOKIE)
        token = self.headers.get(CSRF_HEADER)
        if not cr00:
            out.append(f"the cookie {CSRF_SOURCE_COOKIE!r} is missing")
        if not token:
            out.append(f"the header {CSRF_HEADER!r} is missing")
        if cr00 and token and csrf_for(cr00) != token.lower():
            out.append(
                f"the header {CSRF_HEADER!r} is not the MD5 of the {CSRF_SOURCE_COOKIE!r} cookie"
                " (the copied request may be from another session)"
            )
        return out


def proxy_secrets(url: str) -> list[str]:
    try:
        return parse_proxy(url).secret_values()
    except ProxyUrlError:
        return [url]
