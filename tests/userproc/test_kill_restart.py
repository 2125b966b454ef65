"""``kill -9`` of a real ``python -m userproc`` process at many points of its round trips
(at random moments, while an OTO POST is in flight, and after the exchange placed an OTO
whose reply never came), then restart: the sim's record shows no duplicated OTO, no fill
the journal missed, nothing open, no tokens left, and the final volume within one trade
of the target."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from protocol import messages as m
from userproc.journal import Journal

from .conftest import make_settings, make_spec

ROOT = Path(__file__).resolve().parents[2]


def _append(path: Path):
    return open(path, "ab")


async def _spawn(spec, log_path: Path) -> asyncio.subprocess.Process:
    with _append(log_path) as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "userproc",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            cwd=str(ROOT),
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    assert proc.stdin is not None
    proc.stdin.write(msgspec.msgpack.encode(spec))
    await proc.stdin.drain()
    proc.stdin.close()
    return proc


async def _until(cond: Callable[[], bool], within: float) -> None:
    """Wait (bounded) for a condition that lives in another process's file or in the sim's
    matching engine, which offer nothing to await: checked every 5 ms."""
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110 - no event exists across the process boundary
            await asyncio.sleep(0.005)


def _post_in_flight(journal: Path) -> bool:
    if not journal.exists():
        return False
    db = sqlite3.connect(journal)
    try:
        row = db.execute(
            "SELECT COUNT(*) FROM trades WHERE placed=0 AND outcome IS NULL"
        ).fetchone()
        return bool(row[0])
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


@pytest.mark.serial
async def test_sigkill_at_many_points_then_restart(sim_factory, supervisor, tmp_path) -> None:
    rng = random.Random(1234)
    target = Decimal(900)
    jpath = tmp_path / "journals" / "user-u1.sqlite"
    log_path = tmp_path / "child.log"
    async with sim_factory(fill_delay=0.03) as sim:
        engine = sim.sim
        st = make_settings(target_volume=target, single_trade_amount_usdt=Decimal(20))
        spec = make_spec(sim, supervisor, tmp_path, [st])
        spec = msgspec.structs.replace(
            spec, exchange=msgspec.structs.replace(spec.exchange, request_timeout_seconds=1.0)
        )
        plan = ["random", "reply_lost", "random", "post_in_flight", "random", "random"]
        kills = 0
        for how in plan:
            before = len(supervisor.messages)
            otos = engine.accounts["u1"].oto_count if "u1" in engine.accounts else 0
            if how == "reply_lost":  # the exchange places it, the reply never arrives
                await sim.admin.set_faults(
                    hang_next=1, hang_after=True, hang_seconds=3.0, paths=["oto-order/place"]
                )
            elif how == "post_in_flight":  # killed while the POST waits; it lands later
                await sim.admin.set_faults(
                    hang_next=1, hang_after=False, hang_seconds=0.3, paths=["oto-order/place"]
                )
            proc = await _spawn(spec, log_path)
            if how == "reply_lost":
                await _until(lambda o=otos: engine.accounts["u1"].oto_count > o, 20)
            elif how == "post_in_flight":
                await _until(lambda: _post_in_flight(jpath), 20)
            else:
                n = rng.randint(4, 40)
                await supervisor.wait_for(
                    lambda x, b=before, n=n: len(supervisor.messages) >= b + n, within=20
                )
            assert proc.returncode is None, "finished before the kill point"
            proc.kill()
            await proc.wait()
            kills += 1
        await sim.admin.set_faults(hang_next=0)
        proc = await _spawn(spec, log_path)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        summary = await supervisor.summary()
        assert summary.exit_code == 0, summary.reason

        acc = await sim.admin.account("u1")
        j = Journal(jpath)
        assert j.open_trades() == []
        rows = j._rows("kind='oto' AND placed=1")
        buy_qty = {
            r.working_id: Decimal(
                j._db.execute("SELECT buy_qty FROM trades WHERE id=?", (r.id,)).fetchone()[0] or "0"
            )
            for r in rows
        }
        j.close()
        sim_otos = {o["order_id"]: o for o in acc["orders"] if o["position"] == "OTO_WORKING"}
        journal_ids = [r.working_id for r in rows]
        # no duplicated OTO: every OTO the exchange has is exactly one journal trade
        assert len(journal_ids) == len(set(journal_ids)) == acc["oto_count"] == len(sim_otos)
        assert set(journal_ids) == set(sim_otos)
        # no fill missed: the journal recorded what the exchange filled
        for oid, o in sim_otos.items():
            assert buy_qty[oid] == Decimal(o["executed_qty"]), oid
        assert acc["open_orders"] == 0
        held = Decimal(acc["balances"].get("ALPHA_22", {}).get("free", "0"))
        assert held < Decimal("0.0001") * acc["oto_count"]
        final = Decimal(acc["volume_now"]["KOGE"])
        assert target <= final <= target + Decimal(20)

        log = log_path.read_text()
        # the placed OTO whose reply was lost was found, not re-sent; the POST killed in
        # flight never reached the matching engine and was confirmed absent
        assert log.count('"oto_found"') >= 1
        assert log.count('"oto_not_found"') >= 1
        for value in spec.credentials.secret_values():
            assert value not in log  # no cookie or header value in any log line


def _sell_placed(journal: Path) -> bool:
    if not journal.exists():
        return False
    db = sqlite3.connect(journal)
    try:
        row = db.execute(
            "SELECT COUNT(*) FROM trades WHERE kind='sell' AND placed=1 AND outcome IS NULL"
        ).fetchone()
        return bool(row[0])
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


async def test_sigkill_during_a_leftover_sell_then_restart(
    sim_factory, supervisor, tmp_path
) -> None:
    from .conftest import FAST

    jpath = tmp_path / "journals" / "user-u1.sqlite"
    async with sim_factory() as sim:
        # the OTO sell never fills (5% above the buy) and the first leftover sell is priced
        # 20% above the market, so the process sits in the leftover sell when killed
        st = make_settings(
            sell_profit_percentage=Decimal("-5"),
            order_timeout_seconds=0.2,
            target_volume=Decimal(50),
        )
        stuck = msgspec.structs.replace(
            FAST,
            leftover_sell_discount_percentage=Decimal("-20"),
            leftover_sell_timeout_seconds=30.0,
        )
        proc = await _spawn(
            make_spec(sim, supervisor, tmp_path, [st], tuning=stuck), tmp_path / "c.log"
        )
        await _until(lambda: _sell_placed(jpath), 20)
        proc.kill()
        await proc.wait()
        assert (await sim.admin.account("u1"))["open_orders"] == 1  # the leftover sell

        proc = await _spawn(make_spec(sim, supervisor, tmp_path, [st]), tmp_path / "c.log")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        assert (
            Decimal(acc["balances"].get("ALPHA_22", {}).get("free", "0"))
            < Decimal("0.0001") * acc["oto_count"]
        )
        j = Journal(jpath)
        assert j.open_trades() == []
        j.close()
        assert Decimal(acc["volume_now"]["KOGE"]) >= 50


async def test_sigkill_between_the_two_fills_then_restart(
    sim_factory, supervisor, tmp_path
) -> None:
    """Killed while an OTO's buy has filled and its sell is open (NEW) on the exchange,
    twice: the restarted process adopts the trade and records the sell's real fill."""
    jpath = tmp_path / "journals" / "user-u1.sqlite"
    log_path = tmp_path / "child.log"
    target = Decimal(120)
    async with sim_factory(fill_delay=0.2) as sim:
        engine = sim.sim
        spec = make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=target)])
        killed: set[str] = set()

        def open_sell() -> str | None:
            acc = engine.accounts.get("u1")
            for o in acc.orders if acc else ():
                oid = str(o.order_id)
                if o.position == "OTO_PENDING" and o.status == "NEW" and oid not in killed:
                    return oid
            return None

        for _ in range(2):
            proc = await _spawn(spec, log_path)
            await _until(lambda: open_sell() is not None, 20)
            oid = open_sell()
            assert oid is not None and proc.returncode is None
            proc.kill()
            await proc.wait()
            killed.add(oid)
        proc = await _spawn(spec, log_path)
        assert await asyncio.wait_for(proc.wait(), 60) == 0

        acc = await sim.admin.account("u1")
        j = Journal(jpath)
        assert j.open_trades() == []
        rows = j._rows("kind='oto' AND placed=1")
        sold = {
            r.pending_id: Decimal(
                j._db.execute("SELECT sell_qty FROM trades WHERE id=?", (r.id,)).fetchone()[0]
                or "0"
            )
            for r in rows
        }
        leftover_sells = j._rows("kind='sell'")
        j.close()
        assert leftover_sells == []  # every OTO sell filled on its own
        sim_otos = [o for o in acc["orders"] if o["position"] == "OTO_WORKING"]
        assert len(rows) == len({r.working_id for r in rows}) == acc["oto_count"] == len(sim_otos)
        pending = {o["order_id"]: o for o in acc["orders"] if o["position"] == "OTO_PENDING"}
        assert set(sold) == set(pending) and killed <= set(pending)
        for oid, o in pending.items():  # no fill lost, the killed trades' sells included
            assert o["status"] == "FILLED" and sold[oid] == Decimal(o["executed_qty"]), oid
        assert acc["open_orders"] == 0
        held = Decimal(acc["balances"].get("ALPHA_22", {}).get("free", "0"))
        assert held < Decimal("0.0001") * acc["oto_count"]
        assert target <= Decimal(acc["volume_now"]["KOGE"]) <= target + Decimal(30)


def _otos_placed_unfinished(journal: Path) -> int:
    if not journal.exists():
        return 0
    db = sqlite3.connect(journal)
    try:
        (n,) = db.execute(
            "SELECT COUNT(*) FROM trades WHERE kind='oto' AND placed=1 AND outcome IS NULL"
        ).fetchone()
        return int(n)
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


@pytest.mark.serial
async def test_a_restart_asks_rest_at_once_for_a_round_trip_that_ended_while_down(
    sim_factory, supervisor, tmp_path
) -> None:
    """Killed with an OTO open; both legs fill while no process runs. With the production
    REST period (30 s), the restarted process still places its next order within 5 s:
    it asks REST about the adopted orders at once instead of waiting for stream reports
    that will never come."""
    from .conftest import FAST

    jpath = tmp_path / "journals" / "user-u1.sqlite"
    async with sim_factory(fill_delay=1.0) as sim:
        engine = sim.sim
        tuning = msgspec.structs.replace(FAST, rest_check_seconds=30.0)
        spec = make_spec(
            sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(300))], tuning=tuning
        )
        proc = await _spawn(spec, tmp_path / "c.log")
        await _until(lambda: _otos_placed_unfinished(jpath) == 1, 20)
        proc.kill()
        await proc.wait()
        acc = engine.accounts["u1"]
        placed = acc.oto_count
        await _until(lambda: not any(o.is_open for o in acc.orders), 10)  # filled while down
        t0 = asyncio.get_running_loop().time()
        proc = await _spawn(spec, tmp_path / "c.log")
        await _until(lambda: acc.oto_count > placed, 10)
        took = asyncio.get_running_loop().time() - t0
        proc.kill()
        await proc.wait()
        assert took < 5.0, f"next order {took:.1f} s after the restart"


async def test_a_lost_journal_is_rebuilt_from_what_the_exchange_shows(
    sim_factory, supervisor, tmp_path
) -> None:
    """Killed with an OTO's sell open (priced 5 % above the market: it will not fill),
    then the journal is deleted. The next start finds the OTO it does not know, warns,
    adopts it and finishes it (cancel and sell): nothing open, nothing unsold."""
    jpath = tmp_path / "journals" / "user-u1.sqlite"
    log_path = tmp_path / "c.log"
    async with sim_factory() as sim:
        proc = await _with_a_sell_open(sim, supervisor, tmp_path, log_path)
        proc.kill()
        await proc.wait()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{jpath}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240
        assert (await sim.admin.account("u1"))["open_orders"] == 1
        fresh = make_settings(target_volume=Decimal(20), order_timeout_seconds=0.5)
        proc = await _spawn(make_spec(sim, supervisor, tmp_path, [fresh]), log_path)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0
        held = Decimal(acc["balances"].get("ALPHA_22", {}).get("free", "0"))
        assert held < Decimal("0.0001") * acc["oto_count"]
        assert '"orphan_adopted"' in log_path.read_text()
        j = Journal(jpath)
        assert j.open_trades() == [] and len(j._rows("kind='oto' AND placed=1")) >= 1
        j.close()


async def test_a_corrupt_journal_is_fatal_naming_the_file(sim_factory, supervisor, tmp_path):
    from protocol.exitcodes import Exit
    from userproc.main import run_user

    jpath = tmp_path / "journals" / "user-u1.sqlite"
    jpath.parent.mkdir(parents=True)
    jpath.write_bytes(b"this is not a database\n" * 200)
    async with sim_factory() as sim:
        spec = make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(50))])
        assert await run_user(spec) == Exit.BAD_CONFIG
        summary = await supervisor.summary()
        assert str(jpath) in summary.reason and "move it aside" in summary.reason
        assert (await sim.admin.account("u1"))["oto_count"] == 0


async def test_a_journal_another_program_holds_is_not_called_corrupt(
    sim_factory, supervisor, tmp_path
):
    """A sound journal that cannot be used now (here another program holds SQLite's
    exclusive lock; a full disk answers the same way) trades nothing and is not called
    unreadable: its file must not be moved aside, and a restart tries it again."""
    import sqlite3

    from protocol.exitcodes import Exit
    from userproc.main import run_user

    jpath = tmp_path / "journals" / "user-u1.sqlite"
    jpath.parent.mkdir(parents=True)
    other = sqlite3.connect(jpath, isolation_level=None)
    try:
        other.execute("CREATE TABLE kept (x)")  # a rollback-journal database
        other.execute("BEGIN EXCLUSIVE")
        async with sim_factory() as sim:
            spec = make_spec(sim, supervisor, tmp_path, [make_settings(target_volume=Decimal(50))])
            assert await run_user(spec) == Exit.CRASH
            summary = await supervisor.summary()
            assert str(jpath) in summary.reason and "SQLITE_BUSY" in summary.reason
            assert "move it aside" not in summary.reason
            assert (await sim.admin.account("u1"))["oto_count"] == 0
    finally:
        other.close()


async def test_a_round_trip_another_process_stopped_and_sold_is_not_sold_again(
    sim_factory, supervisor, tmp_path
) -> None:
    """Issue 22: a node of a pool stops its user at once (StopNow: the OTO's sell is
    cancelled, its tokens sold by a plain sell) and another host, whose journal knows
    nothing of it, takes the user over. The new process must not adopt that OTO and sell
    its tokens again (refused: they are gone; the user ended FATAL with a "leftover")."""
    jpath = tmp_path / "journals" / "user-u1.sqlite"
    log_path = tmp_path / "c.log"
    async with sim_factory() as sim:
        proc = await _with_a_sell_open(sim, supervisor, tmp_path, log_path)
        await supervisor.send(m.StopNow())
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0 and acc["oto_count"] == 1
        for suffix in ("", "-wal", "-shm"):  # the new owner's host has no journal
            Path(f"{jpath}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240
        fresh = make_settings(target_volume=Decimal(20), order_timeout_seconds=0.5)
        proc = await _spawn(make_spec(sim, supervisor, tmp_path, [fresh]), log_path)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log_path.read_text()[-3000:]
        text = log_path.read_text()
        assert '"orphan_already_sold"' in text and '"order_rejected"' not in text
        acc = await sim.admin.account("u1")
        assert acc["open_orders"] == 0


async def _with_a_sell_open(sim, supervisor, tmp_path, log_path):
    """A user process whose OTO's sell is open and will not fill (priced 5 % above the
    market), once the sim shows that sell waiting."""
    engine = sim.sim
    stuck = make_settings(
        sell_profit_percentage=Decimal("-5"),
        order_timeout_seconds=30.0,
        target_volume=Decimal(1000),
    )
    proc = await _spawn(make_spec(sim, supervisor, tmp_path, [stuck]), log_path)
    await _until(
        lambda: (
            any(
                o.position == "OTO_PENDING" and o.status == "NEW"
                for o in engine.accounts["u1"].orders
            )
            if "u1" in engine.accounts
            else False
        ),
        20,
    )
    return proc
