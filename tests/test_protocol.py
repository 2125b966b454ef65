"""The wire protocol: every message survives its direction's encoder/decoder, a socket
refuses the messages of another direction, and junk is refused with a clear error rather
than a crash."""

from __future__ import annotations

import typing
from decimal import Decimal

import msgspec
import pytest

from config.settings import EffectiveSettings
from protocol import codec, vocab
from protocol import messages as m
from protocol.codec import ProtocolError
from protocol.exitcodes import Exit, describe
from supervisor.states import State
from userproc.lifecycle import Phase

# each direction: its base class, its encoder and its decoder
DIRECTIONS = {
    "event": (m.Event, codec.encode_event, codec.decode_event),
    "command": (m.Command, codec.encode_command, codec.decode_command),
    "request": (m.Request, codec.encode_request, codec.decode_request),
    "reply": (m.Reply, codec.encode_reply, codec.decode_reply),
}


def _direction(msg: m.Msg) -> str:
    (name,) = [name for name, (base, _, _) in DIRECTIONS.items() if isinstance(msg, base)]
    return name


def encode(msg: m.Msg) -> bytes:
    return DIRECTIONS[_direction(msg)][1](msg)


def decode_as(msg: m.Msg, data: bytes) -> m.Msg:
    """``data`` decoded by the decoder of ``msg``'s own direction."""
    return DIRECTIONS[_direction(msg)][2](data)


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
        back = decode_as(msg, encode(msg))
        assert type(back) is cls
        assert back == msg
    # Decimals stay exact: no float ever touches money.
    td = codec.decode_event(encode(samples[m.TradeDone]))
    assert isinstance(td.cost, Decimal) and td.cost == Decimal("0.30012345")


def test_tags_are_unique_and_cover_every_message() -> None:
    tags = [t.__struct_config__.tag for t in _all_message_types()]
    assert all(isinstance(tag, str) for tag in tags)
    assert len(tags) == len(set(tags))


@pytest.mark.parametrize(
    "junk", [b"", b"\x93\x01\x02\x03", msgspec.msgpack.encode({"type": "Nope"})]
)
def test_junk_frames_raise_protocol_error(junk: bytes) -> None:
    for _, _, decode in DIRECTIONS.values():
        with pytest.raises(ProtocolError):
            decode(junk)


def test_exit_codes_split_into_restart_and_fatal() -> None:
    assert Exit.CRASH.restartable and not Exit.CRASH.fatal
    assert Exit.SESSION_EXPIRED.fatal and not Exit.SESSION_EXPIRED.restartable
    assert Exit.RISK_CHALLENGE.fatal
    assert describe(-9) == "killed by signal 9"
    assert describe(11) == "risk_challenge"


# one message of each direction, as it is sent
ONE_OF_EACH = [
    m.Hello(user_id="7", seq=1, pid=123),
    m.Drain(strategy_id="koge"),
    m.StopRequest(user_id="7", now=True),
    m.OkReply(message="stopping user 7"),
]


@pytest.mark.parametrize("msg", ONE_OF_EACH, ids=lambda msg: type(msg).__name__)
def test_a_socket_decodes_only_its_own_directions_messages(msg: m.Msg) -> None:
    data = encode(msg)
    for name, (_, _, decode) in DIRECTIONS.items():
        if name == _direction(msg):
            assert decode(data) == msg
        else:  # e.g. a StopRequest sent to a user process, or a Hello to the control socket
            with pytest.raises(ProtocolError):
                decode(data)


def test_every_message_belongs_to_exactly_one_direction() -> None:
    unions = [m.AnyEvent, m.AnyCommand, m.AnyRequest, m.AnyReply]
    members = [t for u in unions for t in typing.get_args(u)]
    assert sorted(members, key=str) == sorted(_all_message_types(), key=str)
    assert len(members) == len(set(members))
    for union, (base, _, _) in zip(unions, DIRECTIONS.values(), strict=True):
        assert all(issubclass(t, base) for t in typing.get_args(union))


def _settings(**kw: typing.Any) -> EffectiveSettings:
    base: dict[str, typing.Any] = {
        "strategy_id": "koge",
        "strategy_name": "KOGE daily",
        "user_id": "7",
        "target_token": "KOGE",
        "target_volume": Decimal("65536"),
        "candidates": ("KOGE", "AOP"),
        "max_daily_cost_usdt": Decimal("2.5"),
    }
    return EffectiveSettings(**(base | kw))


def test_update_settings_carries_the_settings_struct_in_the_same_bytes_as_before() -> None:
    settings = [_settings(), _settings(strategy_id="aop", enabled=False)]
    data = codec.encode_command(m.UpdateSettings(settings=settings))
    # the frame the supervisor sent when the field was a list of dicts (to_builtins)
    as_dicts = {"type": "UpdateSettings", "settings": msgspec.to_builtins(settings)}
    assert data == msgspec.msgpack.encode(as_dicts)
    back = codec.decode_command(data)
    assert isinstance(back, m.UpdateSettings) and back.settings == settings
    assert isinstance(back.settings[0], EffectiveSettings)
    assert back.settings[0].max_daily_cost_usdt == Decimal("2.5")  # exact, not a float


def test_the_vocabularies_name_every_member_of_their_enums() -> None:
    """The Literal types of ``protocol.vocab`` mirror enums the protocol may not import."""
    assert set(typing.get_args(vocab.UserPhase)) == {p.value for p in Phase}
    assert {r.value for r in vocab.RowState} == {s.value for s in State} | {"QUEUED"}
    assert {e.kind for e in Exit} <= set(typing.get_args(vocab.ErrorKind))
    assert Exit.SESSION_EXPIRED.kind == "session_expired"


def test_a_phase_or_state_outside_its_vocabulary_is_refused_on_the_wire() -> None:
    ok = m.PhaseChanged(user_id="7", phase="trading")
    assert codec.decode_event(codec.encode_event(ok)) == ok
    odd = msgspec.msgpack.encode({"type": "PhaseChanged", "user_id": "7", "phase": "dancing"})
    with pytest.raises(ProtocolError):
        codec.decode_event(odd)
    odd = msgspec.msgpack.encode(
        {"type": "ErrorReport", "user_id": "7", "kind": "?", "message": ""}
    )
    with pytest.raises(ProtocolError):
        codec.decode_event(odd)
