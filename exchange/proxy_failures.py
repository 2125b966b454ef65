"""What a user's proxy did wrong, decided from exception types, errno, SOCKS5 reply codes
and HTTP statuses, never from a library's message text (python-socks rewords and rewraps
its errors between patch releases: 3.2.2 wraps a hang-up in its own ``ProxyError``, 3.2.1
let asyncio's ``IncompleteReadError`` through).

``proxy_failure(exc, proxy)`` names the failure in words (never the password) and says
whether asking again can help. One case the exception cannot settle: a SOCKS5 handshake
that broke off without a reply code (the proxy hung up, or answered our login with a
non-zero status). python-socks does not say at which step, so ``socks5_login`` asks the
proxy itself on a fresh connection (RFC 1928 method negotiation, RFC 1929 login) and reads
the answer's bytes: only a refused login, or a proxy that accepts none of our methods, is
the operator's mistake (``login_refused``), and never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp

from exchange.proxy import Proxy

CANNOT_CONNECT = "cannot connect to the proxy (is it running, and is the address right?)"
LOGIN_REFUSED_HTTP = "refused the username or password (HTTP 407)"
LOGIN_REFUSED_SOCKS = "refused the username or password (SOCKS5 login)"
NO_METHOD = "accepts none of our login methods (does it want a username and password?)"

# RFC 1928 section 6: the reply codes of a SOCKS5 CONNECT, and whether asking again can help
SOCKS5_REPLIES: dict[int, tuple[str, bool]] = {
    0x01: ("general failure", True),
    0x02: ("connection not allowed by its rules", False),
    0x03: ("network unreachable", True),
    0x04: ("host unreachable", True),
    0x05: ("connection refused by the exchange", True),
    0x06: ("TTL expired", True),
    0x07: ("command not supported", False),
    0x08: ("address type not supported", False),
}


@dataclass(frozen=True)
class ProxyFailure:
    what: str  # what the proxy did, in words; never its password
    retry: bool = True  # asking again may help (unreachable, timed out, upstream down)
    login_refused: bool = False  # the proxy refused our login: the operator must fix it
    unexplained: bool = False  # a SOCKS5 handshake broke off with no code: ask socks5_login


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(out) < 6:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def proxy_failure(exc: BaseException, proxy: Proxy) -> ProxyFailure | None:
    """What the user's proxy did wrong, or None when ``exc`` is not the proxy's doing."""
    import aiohttp_socks
    import python_socks

    timeouts = (python_socks.ProxyTimeoutError, aiohttp_socks.ProxyTimeoutError)
    unreachable = (python_socks.ProxyConnectionError, aiohttp_socks.ProxyConnectionError)
    refusals = (python_socks.ProxyError, aiohttp_socks.ProxyError)
    for e in _chain(exc):
        # 407 comes from a proxy only: on CONNECT (wss://, https://) or on a plain ws:// upgrade
        if isinstance(e, aiohttp.ClientResponseError) and e.status == 407 and not proxy.socks:
            return ProxyFailure(LOGIN_REFUSED_HTTP, retry=False, login_refused=True)
        if isinstance(e, aiohttp.ClientHttpProxyError):  # an HTTP proxy refused CONNECT
            if e.status >= 500:  # 502/503/504: it could not reach the exchange
                return ProxyFailure(f"could not reach the exchange (HTTP {e.status})")
            return ProxyFailure(f"refused to connect to the exchange (HTTP {e.status})", False)
        if isinstance(e, (aiohttp.ClientProxyConnectionError, *unreachable)):
            return ProxyFailure(CANNOT_CONNECT)
        if isinstance(e, timeouts):
            return ProxyFailure("timed out")
        if isinstance(e, refusals) and e.error_code in SOCKS5_REPLIES:
            meaning, retry = SOCKS5_REPLIES[e.error_code]
            return ProxyFailure(
                f"could not connect us (SOCKS5 reply {e.error_code}: {meaning})", retry
            )
        if proxy.socks and isinstance(e, (*refusals, asyncio.IncompleteReadError)):
            return ProxyFailure("broke off the SOCKS5 handshake", unexplained=True)
    if proxy.socks and isinstance(exc, aiohttp.ClientConnectorError):
        return ProxyFailure(f"could not connect through the proxy ({type(exc).__name__})")
    return None


async def socks5_login(proxy: Proxy, within: float) -> ProxyFailure | None:
    """Log in to the SOCKS5 proxy on a fresh connection, offering what python-socks offers
    (no authentication, and username/password when the URL has both): a refused login
    (RFC 1929 status not 0, or a hang-up right after our credentials) or no acceptable
    method (0xFF) is a ``login_refused`` failure; None when the login went through or the
    proxy could not be asked (then the failure stays a transient one)."""
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
            try:
                return await _login(proxy, reader, writer)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None


async def _login(
    proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> ProxyFailure | None:
    with_password = bool(proxy.username and proxy.password)
    methods = b"\x00\x02" if with_password else b"\x00"
    writer.write(bytes([5, len(methods)]) + methods)
    await writer.drain()
    version, method = await reader.readexactly(2)
    if version != 5:
        return ProxyFailure("is not a SOCKS5 proxy (check the scheme and port)", retry=False)
    if method == 0xFF:
        return ProxyFailure(NO_METHOD, retry=False, login_refused=True)
    if method != 0x02 or not with_password:
        return None  # no login asked for: the handshake broke off elsewhere
    assert proxy.username is not None and proxy.password is not None
    user, password = proxy.username.encode(), proxy.password.encode()
    writer.write(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
    await writer.drain()
    reply = await reader.read(2)
    if len(reply) < 2 or reply[1] != 0:  # RFC 1929: a failure status, then it closes
        return ProxyFailure(LOGIN_REFUSED_SOCKS, retry=False, login_refused=True)
    return None
