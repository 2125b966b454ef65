"""Issue 22, a user taken over on a node of a pool: the new node's process starts with an
empty journal and the order ids the other nodes copied into the shared books
(``UserSpec.copied_elsewhere``). The round trips of today that the exchange shows and no
node copied (the old node died, or handed the user over, before its next copy) are
recorded with their real fills, so the user's day (and its cost cap) stays whole; the
ones copied are left to their node, and nothing is placed for any of them."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from protocol import messages as m
from protocol.exitcodes import Exit
from userproc.main import run_user
from userproc.spec import CopiedElsewhere

from .conftest import make_settings, make_spec
from .test_kill_restart import _with_a_sell_open


def oto_rows(journal: Path) -> dict[str, tuple[int, str, str]]:
    """Buy's order id -> (placed, outcome, cost) of every round trip of a journal."""
    db = sqlite3.connect(journal)
    try:
        rows = db.execute(
            "SELECT working_id, placed, outcome, cost FROM trades WHERE kind = 'oto'"
        ).fetchall()
    finally:
        db.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows if r[0]}


async def test_round_trips_no_node_copied_are_recorded_by_the_new_node(
    sim_factory, supervisor, tmp_path
) -> None:
    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(150))  # a handful of 30 USDT round trips
        old = make_spec(sim, supervisor, tmp_path / "old", [st])
        assert await run_user(old) == Exit.OK
        before = await sim.admin.account("u1")
        theirs = oto_rows(Path(old.journal_path))
        buys = sorted(
            (o["created_ms"], o["order_id"])
            for o in before["orders"]
            if o["position"] == "OTO_WORKING"
        )
        assert len(buys) >= 4 and set(theirs) == {oid for _, oid in buys}
        copied = {oid for _, oid in buys[:-2]}  # the old node's last two never reached the books

        today = datetime.now(UTC).date().isoformat()
        spec = msgspec.structs.replace(
            make_spec(sim, supervisor, tmp_path / "new", [st]),
            copied_elsewhere=CopiedElsewhere(day=today, order_ids=frozenset(copied)),
        )
        assert await run_user(spec) == Exit.OK  # the target was reached: nothing to trade

        after = await sim.admin.account("u1")
        assert after["oto_count"] == before["oto_count"]  # nothing placed
        ours = oto_rows(Path(spec.journal_path))
        assert set(ours) == {oid for _, oid in buys[-2:]}
        for oid, (placed, outcome, cost) in ours.items():  # as the old node had them
            assert placed == 1 and outcome == theirs[oid][1], (oid, ours, theirs)
            assert Decimal(cost) == Decimal(theirs[oid][2]), (oid, ours, theirs)


async def test_a_single_host_does_not_record_round_trips_it_did_not_place(
    sim_factory, supervisor, tmp_path
) -> None:
    """Without a pool (no ``copied_elsewhere``) a process with an empty journal adopts only
    what still needs work: finished round trips are not read back one by one."""
    async with sim_factory() as sim:
        st = make_settings(target_volume=Decimal(90))
        assert await run_user(make_spec(sim, supervisor, tmp_path / "old", [st])) == Exit.OK
        spec = make_spec(sim, supervisor, tmp_path / "new", [st])
        assert await run_user(spec) == Exit.OK
        assert oto_rows(Path(spec.journal_path)) == {}


async def test_a_round_trip_whose_tokens_the_old_node_sold_is_recorded_with_that_sale(
    sim_factory, supervisor, tmp_path
) -> None:
    """The old node stopped the user at once (its OTO's sell cancelled, the tokens sold by
    a plain sell) and never copied that round trip: the new node records it with the
    plain sell's fills (the same cost the old journal has) and sells nothing again."""
    async with sim_factory() as sim:
        old_dir, log_path = tmp_path / "old", tmp_path / "c.log"
        proc = await _with_a_sell_open(sim, supervisor, old_dir, log_path)
        await supervisor.send(m.StopNow())
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        theirs = oto_rows(old_dir / "journals" / "user-u1.sqlite")
        before = await sim.admin.account("u1")
        assert before["oto_count"] == 1 and len(theirs) == 1

        today = datetime.now(UTC).date().isoformat()
        st = make_settings(target_volume=Decimal(20))  # reached: nothing to trade
        spec = msgspec.structs.replace(
            make_spec(sim, supervisor, tmp_path / "new", [st]),
            copied_elsewhere=CopiedElsewhere(day=today, order_ids=frozenset()),
        )
        assert await run_user(spec) == Exit.OK
        after = await sim.admin.account("u1")
        assert len(after["orders"]) == len(before["orders"])  # nothing placed, nothing sold
        ours = oto_rows(Path(spec.journal_path))
        assert ours.keys() == theirs.keys()
        (oid,) = ours
        assert ours[oid][:2] == (1, "done") and Decimal(ours[oid][2]) == Decimal(theirs[oid][2])
