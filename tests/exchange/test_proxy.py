"""Issue 12, a proxy per account: the client and the user stream of a user with a proxy
go through it (a real pproxy on loopback, with a password), HTTP and SOCKS5 alike; a wrong
password or a dead proxy is one error naming the proxy, never its password."""

from __future__ import annotations

import asyncio

import pytest

from config.logsetup import redact
from exchange.client import AlphaClient
from exchange.errors import ProxyFailed, ProxyLoginRefused
from exchange.proxy import ProxyUrlError, parse_proxy
from exchange.sim.testing import SimHarness
from exchange.stream import StreamConnected, UserStream
from tests.passproxy import PasswordProxy, free_port, requests_of

PASSWORD = "pw-Zq8vX3"


@pytest.fixture
async def sim():
    async with SimHarness(fill_delay=0, volume_lag=0) as h:
        yield h


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_rest_and_stream_go_through_the_proxy_others_do_not(sim, scheme):
    sim_port = _port(sim.base_url)
    async with PasswordProxy(scheme, "alice", PASSWORD) as proxy:
        routed = sim.credentials("acct2").routed(proxy.url)
        assert PASSWORD not in repr(routed) and "alice:***@" in repr(routed)
        async with AlphaClient(base_url=sim.base_url, credentials=routed) as client:
            await client.user_volume()
            stream = UserStream(client, ws_url=sim.ws_url, initial_backoff=0.05)
            seen: list[object] = []
            task = asyncio.create_task(stream.run(seen.append))
            assert await stream.wait_connected(10)
            await stream.close()
            await task
        assert any(isinstance(e, StreamConnected) for e in seen)
        carried = len(proxy.connections(sim_port))
        assert carried >= 1, proxy.lines
        before = await requests_of(sim, "acct1")
        async with AlphaClient(base_url=sim.base_url, credentials=sim.credentials("acct1")) as c:
            await c.user_volume()
        assert await requests_of(sim, "acct1") == before + 1
        assert len(proxy.connections(sim_port)) == carried  # the other user went direct


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_a_wrong_password_or_a_dead_proxy_is_named_without_its_password(sim, scheme):
    async with PasswordProxy(scheme, "alice", PASSWORD) as proxy:
        cases = {
            "wrong": proxy.with_password("not-the-pw-4"),
            "dead": f"{scheme}://alice:{PASSWORD}@127.0.0.1:{free_port()}",
        }
        for case, url in cases.items():
            creds = sim.credentials("acct2").routed(url)
            async with AlphaClient(
                base_url=sim.base_url, credentials=creds, retry_base_delay=0
            ) as client:
                with pytest.raises(ProxyFailed) as err:
                    await client.user_volume()
            text = str(err.value)
            assert f"proxy {scheme}://alice:***@127.0.0.1:" in text, (case, text)
            assert PASSWORD not in text and "not-the-pw-4" not in text
            want = "cannot connect to the proxy" if case == "dead" else "username or password"
            assert want in text, text
            # a wrong password is the operator's to fix (never retried); a dead proxy may
            # come back
            assert isinstance(err.value, ProxyLoginRefused) == (case == "wrong"), case
        assert await requests_of(sim, "acct2") == 0  # nothing got through


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_the_user_stream_stops_on_a_refused_password_and_retries_a_dead_proxy(sim, scheme):
    """A wrong password ends the stream (the user process then stops for good); a proxy
    that is not running is retried until it comes back or the stream is closed."""
    async with PasswordProxy(scheme, "alice", PASSWORD) as proxy:
        wrong = sim.credentials("acct2").routed(proxy.with_password("not-the-pw-4"))
        async with AlphaClient(
            base_url=sim.base_url, credentials=wrong, retry_base_delay=0
        ) as client:
            stream = UserStream(client, ws_url=sim.ws_url, initial_backoff=0.01)
            with pytest.raises(ProxyLoginRefused) as err:
                await asyncio.wait_for(stream.run(lambda e: None), 20)
        assert "not-the-pw-4" not in str(err.value) and "alice:***@" in str(err.value)
    dead = sim.credentials("acct2").routed(f"{scheme}://alice:{PASSWORD}@127.0.0.1:{free_port()}")
    async with AlphaClient(
        base_url=sim.base_url, credentials=dead, retry_base_delay=0, max_get_retries=0
    ) as client:
        stream = UserStream(client, ws_url=sim.ws_url, initial_backoff=0.01, max_backoff=0.05)
        task = asyncio.create_task(stream.run(lambda e: None))
        done, _ = await asyncio.wait({task}, timeout=1.0)
        assert not done  # still trying
        await stream.close()
        await asyncio.wait_for(task, 5)


class StrictSocks5:
    """A SOCKS5 proxy on loopback that speaks RFC 1928/1929 to the letter (pproxy just
    hangs up on a wrong password) and then does what ``mode`` says: ``refuse_login``
    answers the login with status 1; ``hangup`` accepts it, reads the CONNECT and hangs
    up without a reply; ``reply:N`` answers the CONNECT with reply code N. ``connects``
    counts the CONNECT requests it was sent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connects = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, n = await reader.readexactly(2)
            await reader.readexactly(n)
            writer.write(b"\x05\x02")  # username/password, please
            _, ulen = await reader.readexactly(2)
            await reader.readexactly(ulen)
            await reader.readexactly((await reader.readexactly(1))[0])
            if self.mode == "refuse_login":
                writer.write(b"\x01\x01")
                return
            writer.write(b"\x01\x00")
            await reader.readexactly(4)  # VER CMD RSV ATYP (an IPv4 address: 4 + 2 bytes)
            await reader.readexactly(6)
            self.connects += 1
            if self.mode.startswith("reply:"):
                code = int(self.mode.split(":")[1])
                writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        except asyncio.IncompleteReadError:
            pass
        finally:
            await writer.drain()
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"socks5://alice:{PASSWORD}@127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize(
    "mode, login_refused, retried, words",
    [
        ("refuse_login", True, False, "refused the username or password"),
        ("hangup", False, True, "broke off the SOCKS5 handshake"),
        ("reply:5", False, True, "SOCKS5 reply 5: connection refused by the exchange"),
        ("reply:2", False, False, "SOCKS5 reply 2: connection not allowed by its rules"),
    ],
)
async def test_socks5_failures_are_told_apart_by_their_codes(
    sim, mode, login_refused, retried, words
):
    """Only a refused login is the operator's mistake; a proxy that hangs up after a good
    login, or cannot reach the exchange, is retried like any transport failure."""
    stub = StrictSocks5(mode)
    async with stub as url:
        creds = sim.credentials("acct2").routed(url)
        async with AlphaClient(
            base_url=sim.base_url, credentials=creds, retry_base_delay=0, max_get_retries=2
        ) as client:
            with pytest.raises(ProxyFailed) as err:
                await client.user_volume()
    text = str(err.value)
    assert words in text and "socks5://alice:***@127.0.0.1:" in text, text
    assert PASSWORD not in text
    assert isinstance(err.value, ProxyLoginRefused) == login_refused, text
    if mode != "refuse_login":
        assert stub.connects == (3 if retried else 1), stub.connects


def test_proxy_urls_are_checked_and_never_shown_with_their_password():
    p = parse_proxy("socks5://bob:se%40cret@10.0.0.1:1080")
    assert (p.scheme, p.host, p.port, p.username, p.password) == (
        "socks5",
        "10.0.0.1",
        1080,
        "bob",
        "se@cret",
    )
    assert p.shown == "socks5://bob:***@10.0.0.1:1080" and "se@cret" not in repr(p)
    for bad, why in [
        ("ftp://h:1", "scheme 'ftp' is not supported"),
        ("socks5://u:secretpw@h", "port is missing"),
        ("http://u:secretpw@:8080", "host is missing"),
        ("socks5://u:secretpw@h:99999", "port must be a number"),
        ("h:1080", "must start with"),
    ]:
        with pytest.raises(ProxyUrlError, match=why) as err:
            parse_proxy(bad)
        assert "secretpw" not in str(err.value)
    # any URL's password is masked in what is logged or printed, however short
    assert redact("via http://u:pw@127.0.0.1:8080 ok") == "via http://u:***@127.0.0.1:8080 ok"
