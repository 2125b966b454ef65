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
    if b["value"] > 1.1:
        out.append(
            f"- **REST calls per round trip**: {b['value']} against a bar of 1.1 "
            f"({round(b['value'] - 1.1, 3)} over; {b['in_trade_loop']} inside the trade loop). "
            "Per round trip the sim counted: "
            + ", ".join(f"{k} {v}" for k, v in per.items())
            + ". Why: every call but the OTO itself is one of those above; the largest is "
            "the one to cut (userproc/session.py, userproc/runner.py)."
        )
    g = lt["bar_median_gap_lt_5ms"]
    if not g["met"]:
        rest = round(sum(v for k, v in per.items() if k != "place"), 3)
        out.append(
            f"- **Sell fill -> next OTO**: median {g['value_ms']} ms against a bar of under "
            f"5 ms (the sim stamps in whole ms). Why: no REST call sits on this path "
            f"({rest} calls per round trip besides the OTO, all outside it); what does is the "
            "journal: the finished round trip is committed, then the next round trip's "
            "intent is committed and fsynced (synchronous=FULL for that commit, "
            "userproc/journal.py) before the OTO is sent, as the rule says (record the intent "
            "before sending, so a kill -9 never leaves an order nobody knows of), and the "
            "child runs at nice +10 behind the sim on 2 shared cores. Fix: a faster disk "
            "for the data directory, or the finish and the next intent in one commit (one "
            "fsync instead of two writes); the fsync itself stays."
        )
    return out


def _footprint(fp: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if fp["tree_pss_mib"] > 45:
        parts = ", ".join(
            f"{p['role']} {p['pss_mib']} MiB ({p.get('pss_anon_mib')} anonymous)"
            for p in fp["per_process"]
        )
        out.append(
            f"- **The whole service with one user**: {fp['tree_pss_mib']} MiB PSS against a "
            f"bar of 45 MiB ({round(fp['tree_pss_mib'] - 45, 1)} over): {parts}. Why: three "
            "CPython interpreters, each with its own heap, where the original tool is one: "
            "the supervisor (config, control socket, books, notifications, metrics), the fork "
            "server (the template every user process is forked from: the user process's "
            "modules imported once, so that hundreds of users share them) and the user "
            "process. The pages the user process shares with the fork server are counted "
            "half to each; what each holds alone is mostly Python objects whose reference "
            "counts CPython 3.11 writes on use (copy-on-write of the template's pages). "
            "Fix: a design change (the supervisor and the fork server as one process that "
            "forks children before it starts any thread, or users as tasks of one process); "
            "not done: the design card wants one isolated process per user and a supervisor "
            "that survives their crashes."
        )
    rest = fp["rest_requests"] - fp["rest_by_path"].get("/w3w/stream", 0)
    if rest > 20:
        places = sum(v for k, v in fp["rest_by_path"].items() if k.endswith("/place"))
        others = ", ".join(
            f"{k.rsplit('/', 1)[-1]} {v}"
            for k, v in sorted(fp["rest_by_path"].items())
            if not k.endswith("/place") and k != "/w3w/stream"
        )
        out.append(
            f"- **REST requests for the one-user run**: {rest} against a bar of 20 "
            f"({rest - 20} over): {places} OTOs (one per round trip, the floor) and {others}. "
            "Why: besides the OTOs every request is a check the rules ask for: the "
            "supervisor's volume check (skip a user at target), the user's own reads at "
            "the start of a batch and at the end (settle, then a confirming read before "
            "'done'), the orders the journal does not know of (open orders and history: "
            "adopt before acting, after a lost journal), the balance (the 100 USDT rule), "
            "the token list (mulPoint), exchange info (filters), the listen key and one "
            "ticker. Fix: drop the confirming volume read when the settle read is past the "
            "lag, and the history read when the journal is intact (the open orders still "
            "checked); each is a safety read traded for a request, not done."
        )
    return out


def _scale(sc: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    pss_bad = [s for s in sc if s.get("user_pss_mib", {}).get("max") is not None]
    pss_bad = [s for s in pss_bad if s["user_pss_mib"]["max"] > 10]
    pss_ok = [
        s for s in sc if s.get("user_pss_mib", {}).get("max") is not None and s not in pss_bad
    ]
    if pss_bad:
        worst = max(pss_bad, key=lambda s: s["user_pss_mib"]["max"])
        b = worst.get("user_median_rollup_mib", {})
        mb = worst["user_pss_mib"]["max"]
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
            + f" against a bar of 10 MiB (worst {mb:.2f} MiB, {mb - 10:.2f} MiB over"
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
            "scale`): " + f"about {mb - 10:.2f} MiB less per process. What a child holds alone is "
            "mostly the template's Python objects it touched: CPython 3.11 writes an "
            "object's reference count when it is used, which copies its page into the "
            "child (gc.freeze() keeps only the collector away; msgspec's type information is "
            "already built in the template), plus its own sockets, SQLite cache and "
            "buffers. Less would take fewer objects touched per child, or several users "
            "per process (a change of the design card's one process per user)."
        )
    for s in sc:
        if "error" in s:
            out.append(f"- **{s['users']} users**: the run failed: {s['error']}")
            continue
        lg = s.get("supervisor_log", {})
        lost = lg.get("exits_by_code", {}).get("16", 0)
        n = s["users"]
        first = s.get("first_order_all_users_seconds")
        if n >= 300 and (
            s.get("user_processes_running", 0) < n
            or s.get("users_with_first_order", 0) < n
            or (n >= 1000 and (first is None or first > 60))
        ):
            out.append(
                f"- **{n} users at once**: {s.get('users_with_first_order')} of {n} placed a "
                f"first order in the run (the last "
                f"{'-' if first is None else first} s after the start, the median "
                f"{s.get('first_order_median_seconds')} s; the {lg.get('process_starts')} "
                f"process starts spanned {lg.get('process_starts_span_seconds')} s); half-way "
                f"through the window {s.get('user_processes_running')} user processes were "
                f"alive; {lost} exited with status 16 = SUPERVISOR_LOST. Measured: the "
                f"machine's CPUs were {s.get('machine_cpu_busy_percent_window')} % busy (user "
                f"processes {s.get('user_processes_cpu_percent_window')} %, the sim "
                f"{s.get('sim_cpu_percent_window')} % of one CPU). Why: starting a user costs "
                "CPU of its own (its journal, sockets, user stream and first requests, and the "
                "sim's work to answer them), and a user that has started trades and takes its "
                "share: on 2 cores shared with the sim the starts queue behind the trading. "
                "Fix: fewer processes per core (max_concurrent_users), less CPU per trade in "
                "the user processes, or the exchange on other cores (as on a real deployment)."
                + (
                    f" The SUPERVISOR_LOST exits: the supervisor was blocked writing its log "
                    f"({s.get('supervisor_states_window_percent', {}).get('D fdget_pos')} % of "
                    f"the samples, below) and sent no Ping for {HEARTBEAT_TIMEOUT:g} s: its "
                    "children took it for a hung one, as they must."
                    if lost
                    and s.get("supervisor_states_window_percent", {}).get("D fdget_pos", 0) > 10
                    else ""
                )
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
            bar = 200 if s["users"] >= 1000 else 100
            if st.get("p99") is None or st["p99"] >= bar:
                wait = s.get("supervisor_run_queue_wait_per_second")
                states = s.get("supervisor_states_window_percent", {})
                runnable = states.get("R (running or runnable)")
                busy = s.get("machine_cpu_busy_percent_window")
                txt = (
                    f"- **status p99 with {s['users']} users**: {st.get('p99')} ms against a "
                    f"bar of {bar} ms ({round(st['p99'] - bar, 1) if st.get('p99') else '-'} ms "
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
                blocked = states.get("D fdget_pos", 0)
                if blocked > 10:
                    txt += (
                        f"Why: in {blocked} % of the samples the supervisor was blocked "
                        "writing a log line (D fdget_pos: the log file every user process "
                        "appends to, whose lock a descheduled child holds). Fix: the "
                        "supervisor writes its log from a thread of its own (config/"
                        "logsetup.py, background=True), so its loop never waits on it."
                    )
                elif wait is not None and wait > 0.1 and (busy or 0) > 80:
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
                elif (busy or 0) > 80:
                    txt += (
                        "Why: the CPUs are saturated; the supervisor waits less for a CPU "
                        "than the children (nice +10) but answers each request behind the "
                        "events of hundreds of busy children (the loop yields every 16). "
                        "Fix: less CPU per trade in the user processes, or the exchange on "
                        "other cores."
                    )
                elif s.get("status_failures"):
                    txt += (
                        "Why: requests went unanswered while the supervisor was not busy: "
                        "its event loop was blocked. Fix: never block the supervisor's loop."
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


def _failover(fo: dict[str, Any]) -> list[str]:
    if (fo.get("bar_le_60s") or {}).get("met") and fo.get("invariant_held"):
        return []
    if "bar_le_60s" not in fo:
        return [f"- **Failover**: not measured: {fo.get('error', 'no figures')}."]
    out: list[str] = []
    w, lease = fo["kill_to_next_order_seconds"], fo["lease_seconds"]
    if not fo["bar_le_60s"]["met"]:
        short = fo["orphaned_users"] - fo["with_next_order"]
        out.append(
            f"- **Failover**: kill -> next order max {w['max']} s against a bar of 60 s "
            f"({fo['with_next_order']}/{fo['orphaned_users']} users ordered again, {short} "
            f"not within the bench's bound; every one a new owner: "
            f"{fo['every_user_new_owner']}). Why: the lease accounts for at most "
            f"{lease * 1.2:g} s (expiry a lease after the last renewal, the claim at the "
            "survivors' next tick, every fifth of a lease); the rest is the new owner "
            "starting the user process and its reconciliation with the exchange "
            "(userproc/recovery.py) on a loaded machine. Fix: look at the new owners' "
            "user_claimed -> first order in their logs; a shorter lease_seconds trades "
            "renewals for a faster failover."
        )
    if not fo["invariant_held"]:
        out.append(
            f"- **Two round trips open at once**: {fo['overlapping_round_trips']} in the "
            f"sim's record, accounts {fo['accounts_with_overlap']}: a new owner placed an "
            "order while the killed node's round trip was still open (adoption in "
            "userproc/recovery.py, or a lease taken before expiry in supervisor/pool/store.py)."
        )
    return out


def missed_notes(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if r.get("failover"):
        out += _failover(r["failover"])
    if r.get("cost"):
        out += _cost(r["cost"])
    if r.get("matrix"):
        out += _overshoot(r["matrix"])
    if r.get("latency"):
        out += _latency(r["latency"])
    if r.get("footprint"):
        out += _footprint(r["footprint"])
    if r.get("scale"):
        out += _scale(r["scale"])
    return out
