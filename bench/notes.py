"""For every missed bar: by how much, why (from what was measured), what would fix it.

The explanations name the code that the measured figures point at; the figures in them
are always the measured ones.
"""

from __future__ import annotations

from typing import Any

from bench.matrix import Cell
from protocol.messages import HEARTBEAT_TIMEOUT
from supervisor.spawn import DEFAULT_CHILD_NICE


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
    small = [
        r
        for r in bad
        if r["ours"]["reached"]
        and r["ours"]["over_trades"] is not None
        and r["ours"]["over_trades"] < 3
        and r["ours"]["trades"] >= 1000
    ]
    if small:
        key = Cell(**small[0]["cell"]).key
        out.append(
            "  Why (reproduced: `python -m bench.matrix --cell "
            f"{key} --settle-poll 0.002` gives the same overshoot on every repetition): "
            "userproc/runner.py `settle()` stops waiting as soon as the volume shows "
            "`expect * 0.999` of the credit the batch should add. That tolerance is relative: "
            "for a batch of N trades it is N/1000 trades' credit, more than one trade once a "
            "batch has ~1000 trades (here the learned batch after the first one of ~1100 "
            "trades). A read that falls while the batch's last fill is still inside the "
            "exchange's lag passes the test, the missing trade's credit is planned again, "
            "and the late fill lands on top. Whether a read falls in that window depends on "
            "timing (the gap between the last two fills vs. settle_poll_seconds), hence only "
            "in some runs, more often under CPU load; in production (trade interval 1 s, "
            "settle_poll_seconds 1 s) the window is wide. Fix: an absolute tolerance, a "
            "fraction of one trade's credit (e.g. accept when `expect - (v - before)` < half "
            "the smallest trade's credit), or never return before `last fill + "
            "volume_check_delay_seconds` once the batch is large."
        )
    elif bad:
        out.append(
            "  Why: not diagnosed by this run; rerun the cell with `python -m bench.matrix "
            "--cell KEY --reps 3` (keys as in results.json)."
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
    pss_ok = [
        s for s in sc if s.get("user_pss_mib", {}).get("max") is not None and s not in pss_bad
    ]
    if pss_bad:
        worst = max(pss_bad, key=lambda s: s["user_pss_mib"]["max"])
        b = worst.get("user_median_rollup_mib", {})
        mb = worst["user_pss_mib"]["max"] * 1.048576
        private = (b.get("Private_Dirty") or 0) + (b.get("Private_Clean") or 0)
        shared = (b.get("Shared_Dirty") or 0) + (b.get("Shared_Clean") or 0)
        share_part = (b.get("Pss") or 0) - private
        out.append(
            "- **PSS per user process**: "
            + ", ".join(
                f"{s['users']} users: median {s['user_pss_mib']['median']} MiB, max "
                f"{s['user_pss_mib']['max']} MiB"
                for s in pss_bad
            )
            + f" against a bar of 12 MB (worst {mb:.2f} MB, {mb - 12:.2f} MB over"
            + (
                "; met at "
                + ", ".join(f"{s['users']} users ({s['user_pss_mib']['max']} MiB)" for s in pss_ok)
                if pss_ok
                else ""
            )
            + f"). Why: PSS is a process's private pages plus its shared pages divided by "
            f"the number of processes sharing them. The median process at {worst['users']} "
            f"users has {private:.2f} MiB private (Private_Dirty {b.get('Private_Dirty')}) "
            f"and {shared:.2f} MiB shared with the fork server and its siblings, of which "
            f"{share_part:.2f} MiB count towards its PSS. With few users the shared pages are "
            "split among few processes, so the same process costs more PSS than at 100 or "
            "300 users. Fix (supervisor/userproc; re-measure with `python -m bench --only "
            "scale`): "
            + (
                f"about {mb - 12:.2f} MB less per process, e.g. fewer private pages per "
                "child (a smaller template heap that children copy on write as CPython "
                "updates reference counts; a capped SQLite cache for the journal)."
                if mb - 12 < 3
                else "much less private memory per child: a smaller template heap "
                "(children copy it on write as CPython updates reference counts; "
                "gc.freeze() only keeps the collector away), a capped SQLite cache for "
                "the journal, MALLOC_ARENA_MAX=2 for the children."
            )
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
                " times). Why: with every CPU busy, processes that wait for a CPU send "
                "and read nothing: a supervisor that sends no Ping for HEARTBEAT_TIMEOUT "
                f"({HEARTBEAT_TIMEOUT:g} s) is taken for a hung one, and a child that "
                "cannot be forked in time is not running. Fix: fewer processes per core "
                "(max_concurrent_users), or less CPU per trade in the user processes."
            )
        if s["users"] < 300 and lost:
            st = s.get("status_ms", {})
            out.append(
                f"- Not a bar, same cause: at {s['users']} users the supervisor started "
                f"{lg.get('process_starts')} processes for {s['users']} users ({lost} exits "
                f"with status 16 = SUPERVISOR_LOST; {lg.get('process_starts')} starts over "
                f"{lg.get('process_starts_span_seconds')} s) and status p99 was {st.get('p99')}"
                " ms: the CPUs were saturated (see below)."
            )
        if s["users"] >= 300:
            st = s.get("status_ms", {})
            if st.get("p99") is None or st["p99"] >= 100:
                wait = s.get("supervisor_run_queue_wait_per_second")
                states = s.get("supervisor_states_window_percent", {})
                runnable = states.get("R (running or runnable)")
                busy = s.get("machine_cpu_busy_percent_window")
                txt = (
                    f"- **status p99 with {s['users']} users**: {st.get('p99')} ms against a "
                    f"bar of 100 ms ({round(st['p99'] - 100, 1) if st.get('p99') else '-'} ms "
                    f"over; p50 {st.get('p50')} ms, max {st.get('max')} ms, "
                    f"{s.get('status_failures')} of {st.get('n')} unanswered within 5 s). "
                    f"Measured in the window: the machine's CPUs were {busy} % busy (user "
                    f"processes {s.get('user_processes_cpu_percent_window')} %, the sim "
                    f"{s.get('sim_cpu_percent_window')} %, the supervisor "
                    f"{s.get('supervisor_cpu_percent_window')} % of one CPU; 100 % = one "
                    f"CPU); the supervisor's main thread was runnable or running in "
                    f"{runnable} % of the samples and spent {wait} s per second waiting on "
                    "a run queue (/proc/PID/schedstat). "
                )
                if wait is not None and wait > 0.1 and (busy or 0) > 80:
                    txt += (
                        "Why: the CPUs are saturated, and the supervisor, one process among "
                        f"{s['users']} busy user processes and the sim, waits for a CPU "
                        "before it can answer: the latency is queueing for the CPU, not "
                        "work done per request (p50 stays low). The children already run "
                        f"at nice +{DEFAULT_CHILD_NICE} (supervisor/spawn.py); what is left: "
                        "spend less CPU per trade in the user processes. On a real "
                        "deployment the exchange does not share these 2 cores (here the "
                        f"sim uses {s.get('sim_cpu_percent_window')} %)."
                    )
                elif s.get("status_failures"):
                    txt += (
                        "Why: requests went unanswered while the supervisor was not busy: "
                        "its event loop was blocked (see the process starts and exits "
                        "above). Fix: never block the supervisor's loop."
                    )
                out.append(txt)
    return out


def _cost(c: dict[str, Any]) -> list[str]:
    """Why auto missed a cost goal, from the runs' own figures."""
    g1, g2 = c["goal_auto_le_30pct_of_x1"], c["goal_auto_within_10pct_of_best"]
    if g1["met"] and g2["met"]:
        return []
    runs = {
        r["token"] if r["kind"] != "auto" else "auto": r for r in c["runs"] if r["kind"] != "seeds"
    }
    auto = runs.get("auto") or {}
    best = runs.get(c.get("best_token") or "") or {}
    chosen = ", ".join(x["token"] for x in auto.get("chosen", [])) or "none"
    out = [
        f"- **USDT per point, auto**: vs fixed x1 {g1['ratio']} (goal <= 0.30), vs the best "
        f"single token {c.get('best_token')} {g2['excess']} over (goal <= 0.10). auto traded "
        f"{'+'.join(auto.get('tokens', [])) or 'nothing'} (choices: {chosen}) at "
        f"{auto.get('cost_bp_per_credited_usdt')} bp per credited USDT, "
        f"{auto.get('trades')} trades; {c.get('best_token')} fixed: "
        f"{best.get('cost_bp_per_credited_usdt')} bp, {best.get('trades')} trades."
    ]
    if auto.get("tokens") and best and c.get("best_token") not in auto["tokens"]:
        out.append(
            "  Why: auto chose by the book's spread and the candles' volatility at its batch "
            "boundaries; the realised cost of the token it chose differed from that "
            "estimate (price moves during the run). Fix: userproc/chooser.py, weigh the "
            "realised cost of the token being traded (the journal's cost per credit) into "
            "its estimate."
        )
    elif auto.get("points", 0) < c["points"]:
        out.append(f"  Why: auto did not reach the target: {auto.get('run')}.")
    else:
        out.append(
            "  Why: auto traded the best token, but its cost differs by the run's price "
            "path (volatility): a second run of the same token would differ as much."
        )
    return out


def missed_notes(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if r.get("cost"):
        out += _cost(r["cost"])
    if r.get("matrix"):
        out += _overshoot(r["matrix"])
    if r.get("latency"):
        out += _latency(r["latency"])
    if r.get("scale"):
        out += _scale(r["scale"])
    return out
