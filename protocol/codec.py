"""One encoder and one decoder per direction of the wire protocol (msgpack via msgspec).

Each socket decodes only the union of its own direction (``protocol.messages``): an event
sent to the control socket, or a control request sent to a user process, is refused as
undecodable like any junk frame. Encoding is msgspec's, the same bytes for every message;
the typed ``encode_*`` functions let mypy check that a message goes the right way.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from protocol import messages as m

_encoder = msgspec.msgpack.Encoder()

Base = TypeVar("Base", bound=m.Msg)
Union = TypeVar("Union")


class ProtocolError(ValueError):
    """A frame that is not a message of this protocol (or not of this socket's direction)."""


class _Direction(Generic[Base, Union]):
    def __init__(self, union: Any) -> None:
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(union)

    def encode(self, msg: Base) -> bytes:
        return _encoder.encode(msg)

    def decode(self, data: bytes) -> Union:
        try:
            msg: Union = self._decoder.decode(data)
        except msgspec.DecodeError as exc:  # names the field, never dumps the frame
            raise ProtocolError(f"undecodable message: {exc}") from None
        return msg


_events: _Direction[m.Event, m.AnyEvent] = _Direction(m.AnyEvent)
_commands: _Direction[m.Command, m.AnyCommand] = _Direction(m.AnyCommand)
_requests: _Direction[m.Request, m.AnyRequest] = _Direction(m.AnyRequest)
_replies: _Direction[m.Reply, m.AnyReply] = _Direction(m.AnyReply)

# user process -> supervisor (the events socket)
encode_event, decode_event = _events.encode, _events.decode
# supervisor -> user process (the same socket pair)
encode_command, decode_command = _commands.encode, _commands.decode
# CLI -> supervisor (the control socket)
encode_request, decode_request = _requests.encode, _requests.decode
# supervisor -> CLI (its reply)
encode_reply, decode_reply = _replies.encode, _replies.decode
