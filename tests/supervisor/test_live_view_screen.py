"""The live view of ``alphavol run`` as a terminal shows it (a real pseudo-terminal, its
output read back through a VT100 screen, pyte): at 80x24 and at 120x40 the headline
does not wrap, each user's round trips, cost, points and USDT per point are on screen,
the volume read from the exchange stands beside what was traded since (``+unconf``), a
disabled strategy is one line; after Ctrl+C the screen holds the exit summary, rounded
and with each strategy's own reason, and nothing of the view."""

from __future__ import annotations

import asyncio
import re
import time

import pyte
import pytest

from tests.supervisor.harness import Deployment, Terminal, strategy
from tests.supervisor.test_real_users import FAST, acct

pytestmark = pytest.mark.serial  # reads a screen redrawn every second: run alone

SUMMARY_VOLUME = re.compile(r"volume (\?|\d+(\.\d\d)?)/\d+ ")


def screen(term: Terminal, columns: int, rows: int, *, scrolled: bool = False) -> list[str]:
    """What the terminal shows now, one string per row (``scrolled``: with the rows that
    scrolled off its top before them)."""
    s = pyte.HistoryScreen(columns, rows, history=1000)
    pyte.ByteStream(s).feed(bytes(term.output))
    above = ["".join(line[x].data for x in range(columns)).rstrip() for line in s.history.top]
    return (above if scrolled else []) + [line.rstrip() for line in s.display]


def today_rows(lines: list[str]) -> dict[str, list[str]]:
    """The rows of the user table under ``user round trips cost today points USDT/point
    session`` (the last: the stored session's age)."""
    head = next(
        (
            i
            for i, x in enumerate(lines)
            if x.split()
            == [*"user round trips cost today".split(), "points", "USDT/point", "session"]
        ),
        None,
    )
    if head is None:
        return {}
    out = {}
    for line in lines[head + 2 :]:
        cells = line.split()
        if len(cells) != 6:
            break
        out[cells[0]] = cells
    return out


async def until_screen(d: Deployment, term: Terminal, size: tuple[int, int], ok, what: str):
    deadline = time.monotonic() + 40
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = screen(term, *size)
        if ok(lines):
            return lines
        assert d.proc is not None and d.proc.poll() is None, "\n".join(lines)
        await asyncio.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}:\n" + "\n".join(lines))


def trading(lines: list[str]) -> bool:
    rows = today_rows(lines)
    return (
        set(rows) == {"1", "2"}
        and all(int(r[1]) >= 2 for r in rows.values())
        and any(re.search(r"\s\+\d[\d,]*\.\d\s", x) for x in lines)  # unconfirmed shown
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_live_view_fits_the_terminal_and_leaves_the_summary(deploy, sim, size):
    columns, rows = size
    await sim.admin.set_config(fill_delay=0.05)
    await sim.admin.set_volume(acct("1"), "AOP", 500)  # aop: user 1 already at target
    d: Deployment = deploy()
    d.store({u: sim.credentials(acct(u)) for u in ("1", "2")})
    d.write_config(
        [
            strategy("koge", ["1", "2"], target=100000, amount=10, volume_check_delay_seconds=2),
            strategy("aop", ["1"], target=300, amount=10, token="AOP"),
            strategy("koge_spare", ["1", "2"], target=500, enabled=False),
        ]
    )
    term = d.start_on_terminal(once=False, child=None, size=size, ALPHAVOL_TUNING=FAST)
    try:
        lines = await until_screen(d, term, size, trading, "both users trading")
        shown = [x for x in lines if x]
        assert len(shown) < rows, "\n".join(lines)  # nothing cut at the bottom
        assert not any(x.strip() in ("...", "…") for x in lines), "\n".join(lines)
        head = lines.index(next(x for x in lines if x.startswith("supervisor pid")))
        assert lines[head + 1] == "", "\n".join(lines)  # the headline did not wrap
        for cells in today_rows(lines).values():
            _, trips, cost, points, per_point, _session = cells
            assert int(trips) >= 2 and float(cost) > 0, cells
            if int(points):  # points of the volume last read (0 before the first read)
                assert float(per_point) == pytest.approx(float(cost) / int(points), abs=1e-4)
        spare = [x for x in lines if "koge_spare" in x]
        assert spare == ["koge_spare (KOGE_SPARE) KOGE: disabled, not traded"], "\n".join(lines)
        spare_at = lines.index(spare[0])
        assert lines[spare_at + 1 : spare_at + 2] in ([""], []), "\n".join(lines)
        table_head = next(
            x
            for x in lines
            if x.split()[:3] == ["user", "state", "pid"]
            or x.split()[:3] == ["user", "state", "volume"]
        )
        assert {"volume", "read", "+unconf", "trades", "ETA"} <= set(table_head.split())
        row_lines = [x for x in lines if x.split()[:2] in (["1", "RUNNING"], ["2", "RUNNING"])]
        assert len(row_lines) == 2 and all(x.split()[-1] != "-" for x in row_lines), lines
        wide = {"pid", "progress", "cost"}
        assert (
            wide <= set(table_head.split())
            if columns >= 110
            else not wide & set(table_head.split())
        )

        term.type(b"\x03")  # Ctrl+C: drain, then the exit summary
        assert await d.wait_exit(60) == 0, d.diagnose()
    finally:
        term.close()
    end = screen(term, columns, rows, scrolled=True)
    text = "\n".join(end)
    assert not any(x.startswith("supervisor pid") for x in end), text  # no view left behind
    assert not today_rows(end), text
    entries = summary(end)
    for user in ("1", "2"):
        (line,) = [x for x in entries if x.startswith(f"user {user} koge:")]
        assert SUMMARY_VOLUME.search(line), line  # rounded to the cent
    (skipped,) = [x for x in entries if x.startswith("user 1 aop:")]
    assert "SKIPPED" in skipped and skipped.endswith("(already at target)"), skipped
    assert "drain" not in skipped
    today = [
        x for x in entries if re.match(r"user [12] today: \d+ round trips, cost \d+\.\d{4} USDT", x)
    ]
    assert len(today) == 2, text


def summary(lines: list[str]) -> list[str]:
    """The exit summary's entries, each joined again where the terminal wrapped it."""
    start = next(i for i, x in enumerate(lines) if x.startswith("alphavol summary for"))
    out: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("  user "):
            out.append(line.strip())
        elif line and out:
            out[-1] += line if line.startswith(" ") else " " + line
    return out
