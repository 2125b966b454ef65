"""The control socket: a ZeroMQ ROUTER inside the 0700 runtime directory.

One request frame in, one reply frame out (msgpack ``protocol`` messages). Each request
type is handled by one small class in ``supervisor.commands``. Handlers are plain
functions over the arbiter's memory: they never wait for a child, so a reply leaves within
milliseconds whatever the user processes are doing. A ROUTER (not REP) so one client that
never reads its reply cannot block the others.
"""

from __future__ import annotations

import structlog

from protocol import codec
from protocol import messages as m
from supervisor.commands import COMMANDS

log = structlog.get_logger(__name__)


def handle(arbiter, req: m.Msg) -> m.Reply:
    command = COMMANDS.get(type(req))
    if command is None:
        return m.ErrorReply(message=f"not a request: {type(req).__name__}")
    try:
        return command().execute(arbiter, req)
    except Exception as exc:  # a bug in one command must not take the supervisor down
        log.exception("control_command_failed", command=command.name)
        return m.ErrorReply(message=arbiter.redact(f"{command.name} failed: {exc}"))


async def serve_control(arbiter) -> None:
    sock = arbiter.runtime.control
    while True:
        frames = await sock.recv_multipart()
        arbiter.faults.hit("control")
        if len(frames) < 2:
            continue
        envelope, payload = frames[:-1], frames[-1]
        try:
            req = codec.decode(payload)
        except codec.ProtocolError as exc:
            reply: m.Reply = m.ErrorReply(message=str(exc))
        else:
            reply = handle(arbiter, req)
        await sock.send_multipart([*envelope, codec.encode(reply)])
