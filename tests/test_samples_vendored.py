"""The repository's copy of the real samples is the one in shared/ (when shared/ is there)."""

from __future__ import annotations

import pytest

from tests.samples import SAMPLES, SHARED_SAMPLES


def test_vendored_samples_exist() -> None:
    assert len(list(SAMPLES.glob("*.json"))) >= 30


@pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="no shared/ beside this checkout")
def test_vendored_samples_match_shared() -> None:
    ours = {p.name: p.read_bytes() for p in SAMPLES.glob("*.json")}
    theirs = {p.name: p.read_bytes() for p in SHARED_SAMPLES.glob("*.json")}
    assert ours == theirs, "copy shared/binance-alpha/samples into tests/data/binance-alpha/"


def test_the_suite_cannot_reach_the_internet() -> None:
    import socket

    from tests.conftest import InternetAccessError

    with pytest.raises(InternetAccessError):
        socket.getaddrinfo("www.binance.com", 443)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(InternetAccessError):
            s.connect(("8.8.8.8", 53))
    finally:
        s.close()
