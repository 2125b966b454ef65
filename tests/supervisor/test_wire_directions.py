"""Each socket hears only its own conversation: a user process's event or a command meant
for a user process, sent to the supervisor's control socket, is answered with an error and
changes nothing (the user it names keeps trading)."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio

from protocol import messages as m
from protocol.addresses import control_endpoint
from protocol.codec import decode_reply, encode_command, encode_event
from tests.supervisor.harness import strategy


async def _ask(endpoint: str, frame: bytes) -> m.AnyReply:
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        await sock.send_multipart([b"", frame])
        async with asyncio.timeout(5):
            return decode_reply((await sock.recv_multipart())[-1])
    finally:
        sock.close(0)


async def test_another_conversations_message_on_the_control_socket_is_refused(deploy, sim):
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}')
    await d.wait_ready()
    await d.wait_users(lambda us: us[("s1", "1")].state == "RUNNING", 20, "user 1 RUNNING")
    endpoint = control_endpoint(d.runtime)
    for frame in (
        encode_command(m.StopNow()),  # the supervisor's own command to a user process
        encode_event(m.Summary(user_id="1", seq=9, exit_code=0, reason="done")),
    ):
        reply = await _ask(endpoint, frame)
        assert isinstance(reply, m.ErrorReply), reply
        assert reply.message.startswith("undecodable message"), reply
    users = await d.users()  # the control socket still answers, and nothing was stopped
    assert users[("s1", "1")].state == "RUNNING"
    assert "StopNow" not in d.commands("1")
