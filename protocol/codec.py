"""The one encoder and decoder of the wire protocol (msgpack via msgspec)."""

from __future__ import annotations

import msgspec

from protocol.messages import Message, Msg

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


class ProtocolError(ValueError):
    """A frame that is not a message of this protocol."""


def encode(msg: Msg) -> bytes:
    return _encoder.encode(msg)


def decode(data: bytes) -> Msg:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:  # names the field, never dumps the frame
        raise ProtocolError(f"undecodable message: {exc}") from None
