"""The control socket: a ZeroMQ ROUTER inside the 0700 runtime directory.

One request frame in, one reply frame out (msgpack ``protocol`` messages). Each request
type is handled by one small class in ``supervisor.commands``. Handlers are plain
functions over the arbiter's memory: they never wait for a child, so a reply leaves within
milliseconds whatever the user processes are doing. One that must wait (``reload`` reads
the config in a process of its own) returns a coroutine: its reply is sent by a task of
its own when ready, and the socket answers other requests meanwhile. A ROUTER (not REP) so one client that
never reads its reply cannot block the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import structlog

from protocol import messages as m
from protocol.codec import ProtocolError, decode_request, encode_reply
from supervisor.commands import COMMANDS

if TYPE_CHECKING:
    import zmq.asyncio

    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)


def handle(arbiter: Arbiter, req: m.Msg) -> m.Reply | Awaitable[m.Reply]:
    command = COMMANDS.get(type(req))
    if command is None:
        return m.ErrorReply(message=f"not a request: {type(req).__name__}")
    try:
        reply = command().execute(arbiter, req)
    except Exception as exc:  # a bug in one command must not take the supervisor down
        return _failed(arbiter, command.name, exc)
    return _later(arbiter, command.name, reply) if inspect.isawaitable(reply) else reply


def _failed(arbiter: Arbiter, name: str, exc: Exception) -> m.Reply:
    log.error("control_command_failed", command=name, exc_info=exc)
    return m.ErrorReply(message=arbiter.redact(f"{name} failed: {exc}"))


async def _later(arbiter: Arbiter, name: str, reply: Awaitable[m.Reply]) -> m.Reply:
    try:
        return await reply
    except Exception as exc:
        return _failed(arbiter, name, exc)


async def _send_when_ready(
    sock: zmq.asyncio.Socket, envelope: list[bytes], reply: Awaitable[m.Reply]
) -> None:
    await sock.send_multipart([*envelope, encode_reply(await reply)])


async def serve_control(arbiter: Arbiter) -> None:
    sock = arbiter.runtime.control
    while True:
        frames = await sock.recv_multipart()
        arbiter.faults.hit("control")
        if len(frames) < 2:
            continue
        envelope, payload = frames[:-1], frames[-1]
        try:
            req = decode_request(payload)
        except ProtocolError as exc:
            reply: m.Reply = m.ErrorReply(message=str(exc))
        else:
            answer = handle(arbiter, req)
            if not isinstance(answer, m.Reply):
                arbiter.tasks.start(_send_when_ready(sock, envelope, answer), "control reply")
                continue
            reply = answer
        await sock.send_multipart([*envelope, encode_reply(reply)])
