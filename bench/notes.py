"""For every missed bar: by how much, why (from what was measured), what would fix it.

The explanations name the code that the measured figures point at; the figures in them
are always the measured ones.
"""

from __future__ import annotations

from typing import Any


def _overshoot(mx: dict[str, Any]) -> list[str]:
    bad = [
        r
        for r in mx["cells"]
        if r.get("ours") and not (r["ours"]["reached"] and (r["ours"]["over_trades"] or 0) <= 1)
    ]
    if not bad:
        return []
    out = [
        f"- **Overshoot**: {len(bad)} of {len(mx['cells'])} cells are over one trade's credit "
        "(or short of the target):"
    ]
    for r in bad:
        o = r["ours"]
        out.append(
            f"  - {r['cell']}: {o['trades']} trades (min {o['min_trades']}), "
            f"over {o['over_usdt']} = {o['over_trades']} trades' credit, reached "
            f"{o['reached']}, exit {o['run'].get('exit')} {o['run'].get('reason')!r} "
            f"{o['run'].get('errors')}"
        )
    out.append(
        "  Why: see the run fields above (a user process that did not reach the target "
        "exited early; an overshoot means a batch was sized on a credit the exchange had "
        "not yet shown). Fix: in userproc/planner.py, size from the settled figure only."
    )
    return out


def _latency(lt: dict[str, Any]) -> list[str]:
    out: list[str] = []
    per = lt["rest_calls_per_path_per_round_trip"]
    b = lt["bar_rest_calls_le_2"]
    if not b["met"]:
        trades = per.get("get-user-trades", 0)
        ticker = per.get("ticker", 0)
        out.append(
            f"- **REST calls per round trip**: {b['value']} against a bar of 2 "
            f"({round(b['value'] - 2, 3)} over; {b['in_trade_loop']} inside the trade loop). "
            f"Per round trip the sim counted: "
            + ", ".join(f"{k} {v}" for k, v in per.items())
            + f". Why: besides the OTO itself, every round trip asks `get-user-trades` "
            f"{trades} times (userproc/roundtrip.py `finish()` calls `Session.fills()` for "
            f"the buy and for the sell leg, userproc/session.py) and `ticker` {ticker} time(s) "
            "(userproc/runner.py `_price_ok()` before every buy, for the price and the "
            "volatility guard). Fix (userproc, not bench): take fills, quote and fees from "
            "the stream's executionReports (they carry `z`, `Z`, `n`/`N`, and the tracker "
            "already keeps them) and ask `get-user-trades` only when the stream was down or "
            "reconnected during the trade or the figures disagree; price the next buy from "
            "the sell's fill price (`L`) and call `ticker` only when that price is older than "
            "a few seconds. That would leave 1 call (the OTO) per round trip in steady state."
        )
    g = lt["bar_median_gap_lt_5ms"]
    if not g["met"]:
        out.append(
            f"- **Sell fill -> next OTO**: median {g['value_ms']} ms against a bar of 5 ms "
            f"({g['value_ms'] - 5 if g['value_ms'] is not None else '-'} ms over). Why: "
            "between a sell's fill and the next OTO the user process makes "
            f"{per.get('get-user-trades', 0) + per.get('ticker', 0)} REST round trips "
            "(get-user-trades x2, ticker) and two SQLite commits (journal fills/finish, "
            "then the next intent). Fix: the REST fix above removes the round trips from "
            "this path."
        )
    return out


def _scale(sc: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    pss_bad = [s for s in sc if s.get("user_pss_mib", {}).get("max") is not None]
    pss_bad = [s for s in pss_bad if s["user_pss_mib"]["max"] * 1.048576 > 12]
    if pss_bad:
        worst = max(pss_bad, key=lambda s: s["user_pss_mib"]["max"])
        b = worst.get("user_median_rollup_mib", {})
        mb = worst["user_pss_mib"]["max"] * 1.048576
        out.append(
            "- **PSS per user process**: "
            + ", ".join(
                f"{s['users']} users: median {s['user_pss_mib']['median']} MiB, max "
                f"{s['user_pss_mib']['max']} MiB"
                for s in pss_bad
            )
            + f" against a bar of 12 MB (worst {mb:.1f} MB, {mb - 12:.1f} MB over). "
            f"Why: PSS counts a process's private pages in full and its shared pages "
            f"divided by the number of sharers. The median process at {worst['users']} "
            f"users has Rss {b.get('Rss')} MiB, of which Private_Dirty {b.get('Private_Dirty')}"
            f" MiB and Shared_Dirty {b.get('Shared_Dirty')} MiB + Shared_Clean "
            f"{b.get('Shared_Clean')} MiB: the shared part costs little, the private part "
            "is the PSS. Before it runs, a fresh fork of the fork server's template (which "
            "already imports userproc.main and calls gc.freeze(), supervisor/template.py) "
            "has about 1 MiB private (measured with a bare fork of supervisor.template: "
            "Private_Dirty 1.0 MiB, rising to 5 MiB after creating a zmq context, an event "
            "loop and an aiohttp session). While it trades, CPython writes reference counts "
            "into every object it uses, so pages of the ~24 MiB template heap get copied "
            "one by one (gc.freeze only keeps the collector away, not refcounting), and the "
            "process adds its own heap (aiohttp connections and websocket buffers, the "
            "SQLite journal's page cache, structlog, msgspec buffers). Fix (supervisor/"
            "userproc; candidates, each to be re-measured with `python -m bench --only "
            "scale`): a smaller template heap (import only what a child runs), a capped "
            "SQLite cache for the journal (`PRAGMA cache_size`), `MALLOC_ARENA_MAX=2` for "
            "the children (zmq's I/O thread gets its own malloc arena otherwise), fewer "
            "live objects per trade; a CPython with immortal objects (3.12+) copies fewer "
            "shared objects. The bar needs about "
            f"{b.get('Private_Dirty', 0) - 11:.0f} MiB less private memory per process."
        )
    for s in sc:
        if "error" in s:
            out.append(f"- **{s['users']} users**: the run failed: {s['error']}")
            continue
        lg = s.get("supervisor_log", {})
        lost = lg.get("exits_by_code", {}).get("16", 0)
        if s["users"] >= 300 and (
            s.get("user_processes_running", 0) < 300 or s.get("users_with_first_order", 0) < 300
        ):
            out.append(
                f"- **300 users at once**: half-way through the window "
                f"{s.get('user_processes_running')} user processes were alive (all 300 had "
                f"placed a first order: {s.get('users_with_first_order')}; the supervisor "
                f"started {lg.get('process_starts')} processes in all, "
                f"{lost} exited with status 16 = SUPERVISOR_LOST, "
                f'"supervisor_lost" {lg.get("warnings_by_event", {}).get("supervisor_lost", 0)}'
                " times). Why: supervisor/arbiter.py `_schedule()` starts every queued "
                "user in one synchronous loop, and each `Spawner.start()` "
                "(supervisor/spawn.py) calls multiprocessing's `Process.start()`, which "
                "blocks on the fork server's pipe until the fork is done; "
                f"{lg.get('process_starts')} starts took {lg.get('process_starts_span_seconds')} s"
                " of wall time. While the loop is blocked no Ping goes out "
                "(`_heartbeat_loop`), so the users started first see no Ping for "
                "HEARTBEAT_TIMEOUT (3.5 s), stop as SUPERVISOR_LOST (exit 16) and are "
                "restarted after a backoff, by the same blocking loop: the processes churn "
                "instead of trading. Fix (supervisor): do not block the loop while forking "
                "(`await loop.run_in_executor(None, proc.start)`, or start a few per loop "
                "iteration with `await asyncio.sleep(0)` between them), and/or send Pings "
                "from a thread that does not depend on the loop; a child could also count "
                "its heartbeat timeout only from its first Ping."
            )
        if s["users"] < 300 and lost:
            st = s.get("status_ms", {})
            out.append(
                f"- Not a bar, same cause: at {s['users']} users the supervisor started "
                f"{lg.get('process_starts')} processes for {s['users']} users ({lost} exits "
                f"with status 16 = SUPERVISOR_LOST; {lg.get('process_starts')} starts over "
                f"{lg.get('process_starts_span_seconds')} s) and status p99 was {st.get('p99')}"
                " ms: the blocking spawn loop described below already bites at this size."
            )
        if s["users"] >= 300:
            st = s.get("status_ms", {})
            if st.get("p99") is None or st["p99"] >= 100:
                out.append(
                    f"- **status p99 with {s['users']} users**: {st.get('p99')} ms against a "
                    f"bar of 100 ms (p50 {st.get('p50')} ms, max {st.get('max')} ms; "
                    f"{s.get('status_failures')} of {st.get('n')} requests got no answer "
                    f"within 5 s; supervisor CPU {s.get('supervisor_cpu_percent_window')} % in"
                    " the window: waiting, not busy). Why: the control socket is served by the "
                    "same event loop that blocks in `Process.start()` while users are "
                    "(re)spawned (see the point above); the unanswered requests fall in the "
                    "churn. Fix: the same: never block the supervisor's loop on forking."
                )
    return out


def missed_notes(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if r.get("matrix"):
        out += _overshoot(r["matrix"])
    if r.get("latency"):
        out += _latency(r["latency"])
    if r.get("scale"):
        out += _scale(r["scale"])
    return out
