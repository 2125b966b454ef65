"""The seeds' planner (seed 000) as a small baseline, for comparison with ours.

    loop: read today's volume -> done if >= target ->
          loops = ceil(remaining / (amount / mulPoint)) -> run `loops` round trips ->
          (let the figure settle) -> read again

Only the planning differs from ours: round trips go through our exchange client
(``exchange.client.AlphaClient`` + ``exchange.ordermath``), fills are awaited on our
``UserStream``, prices are the same (buy = market x (1 + offset), sell = buy x (1 -
profit)). For a fair comparison the baseline waits the same settle window as ours before
re-reading the volume (seed 000 re-reads at once, which is only worse with a lagging
figure). The target is compared in the cell's basis (``traded`` = reported / mulPoint).

Run as ``python -m bench.seeds`` with a JSON job on stdin; prints a JSON result line.
Bounded: at most ``max_trades`` round trips and ``max_seconds`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from decimal import Decimal
from typing import Any

from exchange import ordermath
from exchange.auth import Credentials
from exchange.client import AlphaClient
from exchange.models import ExecutionReport
from exchange.stream import UserStream

HUNDRED = Decimal(100)


def seed_loops(remaining: Decimal, amount: Decimal, mul_point: Decimal) -> int:
    """Seed 000's formula, verbatim: ceil(remaining / (amount / mulPoint)), at least 1."""
    single_real_volume = amount / mul_point
    return max(1, math.ceil(remaining / single_real_volume))


class Orders:
    """Latest stream status per order id, with an event to wait on."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def on_event(self, ev: object) -> None:
        if isinstance(ev, ExecutionReport):
            self.status[ev.order_id] = ev.status
            self.changed.set()

    async def wait(self, oid: str, want: set[str], within: float) -> str | None:
        end = time.monotonic() + within
        while self.status.get(oid) not in want:
            left = end - time.monotonic()
            if left <= 0:
                return self.status.get(oid)
            self.changed.clear()
            if self.status.get(oid) in want:
                break
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass
        return self.status.get(oid)


async def run_seed(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.monotonic()
    token_name = job["token"]
    target = Decimal(str(job["target"]))
    amount = Decimal(str(job["amount"]))
    basis = job["basis"]
    settle = float(job["settle_seconds"])
    buy_off = Decimal(str(job.get("buy_offset", "0.5")))
    sell_pr = Decimal(str(job.get("sell_profit", "1.0")))
    max_trades = int(job.get("max_trades", 5000))
    max_seconds = float(job.get("max_seconds", 300))
    creds = Credentials(cookies=job["cookies"], headers=job["headers"])
    client = AlphaClient(
        base_url=job["base_url"], credentials=creds, request_timeout=5.0, retry_base_delay=0.05
    )
    orders = Orders()
    stream = UserStream(client, ws_url=job["ws_url"], initial_backoff=0.05, max_backoff=0.5)
    st_task = asyncio.create_task(stream.run(orders.on_event))
    trades = batches = 0
    stopped = None
    plans: list[int] = []
    try:
        if not await stream.wait_connected(10):
            raise RuntimeError("stream not connected")
        token = await client.token(token_name)
        filters = (await client.exchange_info()).get(token.pair)
        while True:
            mul = (await client.token(token_name)).mul_point or Decimal(1)
            reported = (await client.user_volume()).volume_of(token_name)
            current = reported / mul if basis == "traded" else reported
            if current >= target:
                break
            loops = seed_loops(target - current, amount, mul)
            plans.append(loops)
            batches += 1
            for _ in range(loops):
                if trades >= max_trades or time.monotonic() - t0 > max_seconds:
                    stopped = f"bounded: {trades} trades, {time.monotonic() - t0:.0f}s"
                    break
                price = (await client.ticker(token.pair)).last_price
                buy_raw = price * (1 + buy_off / HUNDRED)
                buy = ordermath.round_price(buy_raw, filters.tick_size, "BUY")
                req = ordermath.plan_oto(filters, buy_raw, buy * (1 - sell_pr / HUNDRED), amount)
                placed = await client.place_oto(req)
                got = await orders.wait(placed.pending_order_id, {"FILLED", "EXPIRED"}, 30)
                if got not in ("FILLED", "EXPIRED"):
                    raise RuntimeError(f"sell leg not done in 30 s: {got}")
                trades += 1
            if stopped:
                break
            await asyncio.sleep(settle)
    finally:
        await stream.close()
        st_task.cancel()
        await asyncio.gather(st_task, return_exceptions=True)
        requests = client.request_count
        await client.close()
    return {
        "trades": trades,
        "batches": batches,
        "plans": plans,
        "stopped": stopped,
        "client_requests": requests,
        "seconds": round(time.monotonic() - t0, 3),
    }


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        res = asyncio.run(run_seed(job))
    except Exception as exc:  # reported to the orchestrator, which marks the cell
        res = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
