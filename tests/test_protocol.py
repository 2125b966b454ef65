"""The wire protocol: every message survives the one encoder/decoder, and junk is refused
with a clear error rather than a crash."""

from __future__ import annotations

import typing
from decimal import Decimal

import msgspec
import pytest

from protocol import decode, encode
from protocol import messages as m
from protocol.codec import ProtocolError
from protocol.exitcodes import Exit, describe


def _all_message_types() -> list[type[m.Msg]]:
    return list(typing.get_args(m.Message))


def test_every_message_round_trips_with_its_tag() -> None:
    samples = {
        m.Hello: m.Hello(user_id="7", seq=1, pid=123),
        m.TradeDone: m.TradeDone(
            user_id="7",
            strategy_id="koge",
            batch=1,
            index=2,
            loops=3,
            buy_quote=Decimal("29.99712345"),
            sell_quote=Decimal("29.7"),
            credit=Decimal("119.98849380"),
            cost=Decimal("0.30012345"),
            cost_today=Decimal("1.2"),
        ),
        m.StatusReply: m.StatusReply(
            pid=1,
            started_at=0.0,
            day="2026-11-21",
            phase="running",
            strategies=[
                m.StrategyStatus(
                    strategy_id="s",
                    strategy_name="S",
                    token="AOP",
                    target_volume=Decimal("1000"),
                    users=[
                        m.UserStatus(
                            user_id="1",
                            strategy_id="s",
                            state="RUNNING",
                            target_volume=Decimal("1000"),
                        )
                    ],
                )
            ],
        ),
    }
    for cls, msg in samples.items():
        back = decode(encode(msg))
        assert type(back) is cls
        assert back == msg
    # Decimals stay exact: no float ever touches money.
    td = decode(encode(samples[m.TradeDone]))
    assert isinstance(td.cost, Decimal) and td.cost == Decimal("0.30012345")


def test_tags_are_unique_and_cover_every_message() -> None:
    tags = [t.__struct_config__.tag for t in _all_message_types()]
    assert all(isinstance(tag, str) for tag in tags)
    assert len(tags) == len(set(tags))


@pytest.mark.parametrize(
    "junk", [b"", b"\x93\x01\x02\x03", msgspec.msgpack.encode({"type": "Nope"})]
)
def test_junk_frames_raise_protocol_error(junk: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(junk)


def test_exit_codes_split_into_restart_and_fatal() -> None:
    assert Exit.CRASH.restartable and not Exit.CRASH.fatal
    assert Exit.SESSION_EXPIRED.fatal and not Exit.SESSION_EXPIRED.restartable
    assert Exit.RISK_CHALLENGE.fatal
    assert describe(-9) == "killed by signal 9"
    assert describe(11) == "risk_challenge"
