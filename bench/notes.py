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
            "a few seconds. That leaves 1 call (the OTO) per round trip in steady state."
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
            f"Why: the median process at {worst['users']} users has Private_Dirty "
            f"{b.get('Private_Dirty')} MiB of its Rss {b.get('Rss')} MiB (Pss_Anon "
            f"{b.get('Pss_Anon')} MiB, Pss_File {b.get('Pss_File')} MiB): the pages it "
            "shares with the fork server are few because CPython writes reference counts "
            "and GC headers into every object it touches, so the modules the fork server "
            "preloaded (userproc.main: aiohttp, msgspec, structlog, zmq, sqlite3) are "
            "copied into each child on first use, and each child adds its own event loop, "
            "aiohttp session/connector, websocket, ZeroMQ context (with its I/O thread "
            "stack) and SQLite page cache. Fix (supervisor/userproc): `gc.freeze()` in the "
            "fork server after the preload and before forking (keeps the GC from "
            "dirtying the shared objects), import everything the child needs in the "
            "preload (nothing imported lazily after the fork), `zmq.Context(io_threads=1)`"
            " with a small `MAX_SOCKETS`, a smaller SQLite cache (`PRAGMA cache_size`) and "
            "`MALLOC_ARENA_MAX=2` for the children; measure again with this benchmark."
        )
    for s in sc:
        if "error" in s:
            out.append(f"- **{s['users']} users**: the run failed: {s['error']}")
            continue
        if s["users"] >= 300:
            if s.get("user_processes_running", 0) < 300 or s.get("users_with_first_order", 0) < 300:
                out.append(
                    f"- **300 users at once**: {s.get('user_processes_running')} user processes "
                    f"were running and {s.get('users_with_first_order')} had placed an order; "
                    f"states {s.get('states_after_start')} / {s.get('states_at_end')}."
                )
            st = s.get("status_ms", {})
            if st.get("p99") is None or st["p99"] >= 100:
                out.append(
                    f"- **status p99 with {s['users']} users**: {st.get('p99')} ms against a "
                    f"bar of 100 ms (p50 {st.get('p50')} ms, max {st.get('max')} ms, "
                    f"supervisor CPU {s.get('supervisor_cpu_percent_window')} % in the "
                    "window). Why: the supervisor answers status from the same event loop "
                    "that decodes every user's events; with all users trading on 2 cores it "
                    "competes with the user processes and the sim for CPU. Fix: answer "
                    "status from a cached, incrementally updated snapshot and coalesce the "
                    "per-trade events in the user process."
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
