"""A stand-in user process for supervisor tests that do not need real trading.

It speaks the real protocol (DEALER with the user id as routing id, Hello first, events,
Summary last; obeys Ping/Drain/StopNow/UpdateSettings; gives up without Pings) but its
"trades" only add ``single_trade_amount_usdt`` to a counter kept in the journal file, so
a restart resumes where it left. Knobs come from $ALPHAVOL_STANDIN (JSON), which the
supervisor subprocess passes down through the fork server:

  trade_seconds: how long one "trade" takes (default 0.05)
  crash_users:   users that exit with CRASH right after Hello, every time
  drain_seconds: how long finishing the trade in progress takes on Drain
  deaf:          ignore Drain and StopNow (a hung process the supervisor must kill)
  leftover_users: users whose Summary reports tokens left over (they still exit OK)

Every command other than Ping is appended, by name, to ``commands_path(spec)`` (one line
each, deaf or not), so a test can see exactly what the supervisor sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import zmq
import zmq.asyncio

from protocol import messages as m
from protocol.codec import decode_command, encode_event
from protocol.exitcodes import Exit


def commands_path(journal: str | Path) -> Path:
    return Path(f"{journal}.commands")


def commands_of(journal: str | Path) -> list[str]:
    """The commands (Drain, StopNow, UpdateSettings) a stand-in user received, in order."""
    path = commands_path(journal)
    return path.read_text().split() if path.exists() else []


def child_main(spec) -> None:
    sys.exit(int(asyncio.run(_run(spec))))


async def _run(spec) -> Exit:
    knobs = json.loads(os.environ.get("ALPHAVOL_STANDIN") or "{}")
    trade_seconds = float(knobs.get("trade_seconds", 0.05))
    heartbeat_timeout = float(knobs.get("heartbeat_timeout", m.HEARTBEAT_TIMEOUT))
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.IDENTITY, spec.user_id.encode())
    sock.connect(spec.events_endpoint)
    seq = 0

    async def send(cls, **kw):
        nonlocal seq
        seq += 1
        await sock.send(encode_event(cls(user_id=spec.user_id, seq=seq, at=time.time(), **kw)))

    state = {"drain": False, "now": False, "ping": time.monotonic(), "settings": None}
    wake = asyncio.Event()

    async def recv():
        while True:
            msg = decode_command(await sock.recv())
            if not isinstance(msg, m.Ping):
                with commands_path(spec.journal_path).open("a") as f:
                    f.write(type(msg).__name__ + "\n")
            if isinstance(msg, m.Ping):
                state["ping"] = time.monotonic()
            elif knobs.get("deaf"):
                continue  # a hung process: hears Pings, ignores every stop
            elif isinstance(msg, m.Drain):
                state["drain"] = True
            elif isinstance(msg, m.StopNow):
                state["now"] = True
                wake.set()
            elif isinstance(msg, m.UpdateSettings):
                state["settings"] = {s.strategy_id: s for s in msg.settings}

    rtask = asyncio.create_task(recv())
    await send(m.Hello, pid=os.getpid())
    journal = Path(spec.journal_path)
    done: dict[str, str] = json.loads(journal.read_text()) if journal.exists() else {}  # noqa: ASYNC240
    code = Exit.OK
    reason = "target reached"
    summaries = []
    try:
        if spec.user_id in knobs.get("crash_users", []):
            await send(m.ErrorReport, kind="crash", message="stand-in crashes at start")
            code, reason = Exit.CRASH, "stand-in crashes at start"
            return code
        for s in spec.settings:
            sid = s.strategy_id
            current = Decimal(done.get(sid, "0"))
            trades = 0
            while True:
                cfg = (state["settings"] or {}).get(sid, s)  # UpdateSettings, else the spec's
                target, amount = cfg.target_volume, cfg.single_trade_amount_usdt
                await send(
                    m.VolumeChecked,
                    strategy_id=sid,
                    token=s.target_token,
                    current=current,
                    target=target,
                    basis=s.volume_basis,
                )
                if current >= target:
                    break
                if state["drain"] or state["now"]:
                    code, reason = Exit.OK, "drained on request"
                    break
                if time.monotonic() - state["ping"] > heartbeat_timeout:
                    code, reason = Exit.SUPERVISOR_LOST, "no heartbeat"
                    break
                await send(
                    m.BatchPlanned,
                    strategy_id=sid,
                    batch=1,
                    loops=1,
                    remaining=target - current,
                    credit_per_trade=amount,
                )
                try:
                    await asyncio.wait_for(wake.wait(), trade_seconds)
                except TimeoutError:
                    pass
                if state["now"]:
                    code, reason = Exit.OK, "stopped now"
                    break
                if state["drain"] and knobs.get("drain_seconds"):  # StopNow cuts it short
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), float(knobs["drain_seconds"]))
                    if state["now"]:
                        code, reason = Exit.OK, "stopped now"
                        break
                current += amount
                trades += 1
                done[sid] = str(current)
                journal.write_text(json.dumps(done))  # noqa: ASYNC240
                await send(
                    m.TradeDone,
                    strategy_id=sid,
                    batch=1,
                    index=trades,
                    loops=trades,
                    buy_quote=amount,
                    sell_quote=amount,
                    credit=amount,
                    cost=Decimal("0.01"),
                    cost_today=Decimal("0.01") * trades,
                )
            summaries.append(
                m.StrategySummary(
                    strategy_id=sid,
                    token=s.target_token,
                    basis=s.volume_basis,
                    final_volume=current,
                    target=target,
                    trades=trades,
                    reached=current >= target,
                )
            )
            if code != Exit.OK or reason != "target reached":
                break
        return code
    finally:
        leftovers = []
        if spec.user_id in knobs.get("leftover_users", []):
            leftovers.append(m.Leftover(asset="ALPHA_22", token="KOGE", quantity=Decimal("0.5")))
        await send(
            m.Summary, exit_code=int(code), reason=reason, strategies=summaries, leftovers=leftovers
        )
        rtask.cancel()
        sock.close(linger=500)
        ctx.term()


def env_report(spec) -> None:
    """A child that reports which secret-bearing variables it can see, then exits OK."""
    from supervisor.spawn import SCRUBBED_ENV

    seen = sorted(k for k in SCRUBBED_ENV if k in os.environ)
    Path(spec.journal_path).write_text(json.dumps({"env": seen, "user": spec.user_id}))
    sys.exit(0)
