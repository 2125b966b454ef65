from __future__ import annotations

import socket

import pytest

from exchange.auth import Credentials, csrf_for
from exchange.client import AlphaClient
from tests.exchange.fakebapi import FakeBapi

SESSION = "p20tSECRETsession0001"
CR00 = "cr00SECRETcookie0002"
SECRETS = [SESSION, CR00, csrf_for(CR00), "bncUUIDsecret0003", "fvideoTOKENsecret0004"]


@pytest.fixture
def creds() -> Credentials:
    return Credentials(
        cookies={"p20t": SESSION, "cr00": CR00, "logined": "y"},
        headers={
            "csrftoken": csrf_for(CR00),
            "bnc-uuid": "bncUUIDsecret0003",
            "fvideo-token": "fvideoTOKENsecret0004",
            "user-agent": "Mozilla/5.0 TestBrowser",
            "clienttype": "web",
            "x-trace-id": "stale-trace-id",  # copied from the browser; must not be reused
            "content-length": "99",
        },
    )


@pytest.fixture
async def fake(aiohttp_server):
    f = FakeBapi()
    f.server = await aiohttp_server(f.app)
    f.base_url = str(f.server.make_url("")).rstrip("/")
    return f


@pytest.fixture
async def client(fake, creds):
    c = AlphaClient(
        base_url=fake.base_url,
        credentials=creds,
        request_timeout=2.0,
        retry_base_delay=0,
        retry_max_delay=0,
    )
    yield c
    await c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
