"""Talking to a running supervisor: one request, one reply, with a timeout.

Synchronous on purpose (the CLI is short-lived; ``alphavol demo`` may call it from a
thread). A fresh DEALER per request with LINGER 0, so a dead supervisor never hangs us.
"""

from __future__ import annotations

from pathlib import Path

import zmq

from protocol import messages as m
from protocol.addresses import CONTROL_SOCKET, control_endpoint
from protocol.codec import decode_reply, encode_request


class SupervisorNotRunning(Exception):
    pass


class ControlClient:
    def __init__(self, runtime_dir: str | Path) -> None:
        self.runtime_dir = Path(runtime_dir)

    def request(self, msg: m.Request, timeout: float = 2.0) -> m.Reply:
        if not (self.runtime_dir / CONTROL_SOCKET).exists():
            raise SupervisorNotRunning(
                f"no supervisor is running (no socket in {self.runtime_dir})"
            )
        ctx: zmq.Context = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(control_endpoint(self.runtime_dir))
            sock.send_multipart([b"", encode_request(msg)])
            if not sock.poll(int(timeout * 1000), zmq.POLLIN):
                raise SupervisorNotRunning(
                    f"no supervisor answered within {timeout:g} s (socket {self.runtime_dir})"
                )
            reply = decode_reply(sock.recv_multipart()[-1])
        finally:
            sock.close(0)
        if not isinstance(reply, m.Reply):
            raise SupervisorNotRunning(f"unexpected answer {type(reply).__name__}")
        return reply
