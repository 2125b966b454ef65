"""Issue 12, output that fits and tells the truth: status, volumes and the demo as tables
with column headers within 80 columns; the per-batch counter apart from the day's
trades; no ETA for a stopped user; a foreground `run` on a terminal shows the live view
with warnings above it (INFO only with -v), and JSON log lines without a terminal."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from decimal import Decimal

from config.credentials import CredentialStore
from tests.cli.conftest import ALPHAVOL, clean_env
from tests.supervisor.harness import ROOT, STANDIN, strategy

MOVES = re.compile(r"\x1b\[[0-9;?]*[ABHJK]")  # cursor moves and erasures: a new line
STYLES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")  # colours, cursor on/off
# 80 columns: no pid, bar or cost per row (the user's cost is in the table of the day)
STATUS_HEADERS = ["user", "state", "volume", "read", "+unconf", "target", "done", "batch", "trades"]


def fits(text: str, width: int = 80) -> None:
    wide = [line for line in text.splitlines() if len(line) > width]
    assert not wide, wide


def header_line(text: str, headers: list[str]) -> str:
    line = next((x for x in text.splitlines() if all(h in x.split() for h in headers)), None)
    assert line is not None, text
    return line


def row(text: str, first: str) -> list[str]:
    return next(x.split() for x in text.splitlines() if x.split()[:1] == [first])


async def test_status_and_volumes_are_tables_within_80_columns(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "22")})
    await sim.admin.set_volume("acct22", "KOGE", Decimal("123456.789"))
    d.write_config([strategy("koge_volume_boost", ["1", "22"], target=1048576, amount=10)])

    res = await d.acli("volumes")
    assert res.returncode == 0, res.stderr
    fits(res.stdout)
    header_line(res.stdout, ["strategy", "user", "token", "volume", "target", "basis"])
    assert row(res.stdout, "koge_volume_boost")[:5] == [
        *("koge_volume_boost", "1", "KOGE", "0.00", "1,048,576"),
    ]
    assert "123,456.79" in res.stdout

    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}')
    await d.wait_ready()
    await d.wait_users(lambda us: all(u.trades >= 2 for u in us.values()), 20, "trading")
    res = await d.acli("stop", "--user", "22")
    assert res.returncode == 0, res.stderr
    await d.wait_users(lambda us: us[("koge_volume_boost", "22")].state == "STOPPED", 10, "stop")
    res = await d.acli("status")
    assert res.returncode == 0, res.stderr
    fits(res.stdout)
    head = header_line(res.stdout, [*STATUS_HEADERS, "ETA"])
    assert head.split()[-1] == "ETA"
    stopped = row(res.stdout, "22")
    assert stopped[1] == "STOPPED" and stopped[-1] == "-", stopped  # no ETA once stopped
    assert stopped[4] == "1,048,576", stopped
    running = row(res.stdout, "1")
    assert running[1] == "RUNNING"
    batch, trades = running[-3], int(running[-2])  # "i/N" within the batch; the day's total
    assert re.fullmatch(r"\d+/\d+", batch) and trades >= 2, running
    doc = json.loads((await d.acli("status", "--json")).stdout)
    users = {u["user_id"]: u for u in doc["strategies"][0]["users"]}
    assert "eta_seconds" not in users["22"]
    assert {"strategy_id", "strategy_name", "is_running", "target_volume", "total_volume"} <= set(
        doc["strategies"][0]
    )
    assert (await d.acli("shutdown")).returncode == 0
    assert await d.wait_exit(20) == 0
    # without a terminal the supervisor logs JSON lines, one event each
    assert d.events("supervisor_started") and d.events("supervisor_exited")


def _run_on_a_terminal(args: list[str], env: dict[str, str], cwd, within: float = 40) -> str:
    """``alphavol ARGS`` with stdout and stderr on an 80x24 pty; its whole output."""
    main_fd, term_fd = pty.openpty()
    fcntl.ioctl(term_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [ALPHAVOL, *args], stdout=term_fd, stderr=term_fd, env=env, cwd=cwd, start_new_session=True
    )
    os.close(term_fd)
    out = b""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if select.select([main_fd], [], [], 0.5)[0]:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # EIO: the terminal's last writer is gone
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(10) == 0, out.decode(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
    return STYLES.sub("", MOVES.sub("\n", out.decode(errors="replace")))


async def test_run_on_a_terminal_shows_the_live_view_with_warnings_above(deploy, sim):
    env = clean_env(
        ALPHAVOL_CHILD_TARGET=STANDIN,
        ALPHAVOL_STANDIN='{"trade_seconds": 0.1}',
        ALPHAVOL_RESTART_DELAY="0.05",
        PYTHONPATH=str(ROOT),
    )
    runs = []
    for extra in ([], ["-v"]):
        d = deploy()
        d.data.mkdir(parents=True)
        store = CredentialStore(d.data / "credentials.sqlite")  # no key: a warning at start
        for u in ("1", "2"):
            store.put(u, sim.credentials(f"acct{u}"))
        d.write_config([strategy("s1", ["1", "2"], target=200, amount=10)])
        args = ["run", "--once", "--config", str(d.config_path), *extra]
        runs.append(asyncio.to_thread(_run_on_a_terminal, args, env, d.dir))
    quiet, verbose = await asyncio.gather(*runs)
    for out in (quiet, verbose):
        assert out.count("supervisor pid") >= 2, out  # redrawn: more than one frame
        header_line(out, STATUS_HEADERS)
        assert "credentials_plaintext" in out  # a warning, above the view
        assert '{"' not in out  # no JSON log lines on a terminal
        assert "alphavol summary for" in out and "user 1 s1: DONE" in out
        fits(out)
    assert "supervisor_started" not in quiet  # routine INFO only with -v
    assert "supervisor_started" in verbose


def test_the_demo_summary_is_a_table_with_headers_within_80_columns(capsys):
    from supervisor.demo import SUMMARY_HEADERS, print_table

    rows = [
        {
            **{"strategy_id": "koge_demo", "user_id": u, "state": "DONE"},
            **{"start_volume": "0", "final_volume": "1024.15", "target_volume": "1024"},
            **{"trades": 17, "cost_usdt": "0.12171234", "open_orders": 0, "dust_usdt": "0.04"},
        }
        for u in ("1", "2")
    ]
    print_table({"rows": rows, "seconds": 12.0, "nothing_left_open": True})
    out = capsys.readouterr().out
    fits(out)
    assert header_line(out, [h.split()[0] for h in SUMMARY_HEADERS]).split()[:3] == [
        *("strategy", "user", "state"),
    ]
    assert row(out, "koge_demo")[:8] == [
        *("koge_demo", "1", "DONE", "0.00", "1,024.15", "1,024", "17", "0.1217"),
    ]
    assert "trades: round trips today" in out
