"""bench/RESULTS.md from the measured results (nothing in it is typed in by hand: every
figure, and every "met"/"missed", comes from the results dict)."""

from __future__ import annotations

from typing import Any


def _f(x: Any, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _load(section: dict[str, Any]) -> str:
    la = section.get("loadavg_before") or []
    return " / ".join(f"{x:.1f}" for x in la) if la else "-"


def _bar(ok: bool | None) -> str:
    return "**met**" if ok else "**MISSED**"


def _machine(r: dict[str, Any]) -> str:
    mc = r["machine"]
    return (
        f"Machine: {mc['nproc']} CPUs ({mc['cpu_model']}), {mc['memory_gib']} GiB RAM, "
        f"Linux {mc['kernel']}, Python {mc['python']}; run {mc['date_utc']}; "
        f"command `{r['command']}` (whole set {r['seconds']} s). The load average before "
        "each part is given with it (a 1-minute load near 0 means nothing else ran)."
    )


def _tree(r: dict[str, Any]) -> str:
    t = r.get("tree")
    if not t:
        return ""
    a, b = t["start"], t["end"]
    txt = f"Code under test: commit {a['head']}"
    txt += (", with uncommitted changes in " + ", ".join(a["dirty"])) if a["dirty"] else ""
    if a != b:
        txt += (
            f". **The tree changed during the run** (others are still committing): at the "
            f"end commit {b['head']}"
            + ((", uncommitted " + ", ".join(b["dirty"])) if b["dirty"] else "")
            + "; user processes started later ran the newer code"
        )
    return txt + "."


def _alone(r: dict[str, Any]) -> str:
    """Parts run since (``--only``): their figures replaced those of the run above."""
    alone = r.get("parts_run_alone") or {}
    if not alone:
        return ""
    return (
        "Parts run on their own since, their figures in place of that run's: "
        + "; ".join(
            f"{part} (`{a['command']}`, {a['date_utc']}, commit {a['tree']['start']['head']}"
            + (", the tree changed during it" if a["tree"]["start"] != a["tree"]["end"] else "")
            + f", {a['seconds']} s)"
            for part, a in alone.items()
        )
        + "."
    )


def bars(r: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []
    mx = r.get("matrix")
    if mx:
        b = mx["bar_overshoot_le_1_trade"]
        worst = max(
            (c["ours"]["over_trades"] for c in mx["cells"] if c.get("ours")),
            default=None,
            key=lambda v: -1 if v is None else v,
        )
        out.append(
            (
                "overshoot <= 1 trade's credit in every cell (ours)",
                f"{b['cells_ok']}/{b['cells']} cells; worst {_f(worst, 3)} trades",
                b["met"],
            )
        )
    lt = r.get("latency")
    if lt:
        out.append(
            (
                "median sell fill -> next OTO < 5 ms",
                f"{_f(lt['bar_median_gap_lt_5ms']['value_ms'], 1)} ms (sim stamps, 1 ms "
                f"resolution); {_f((lt.get('observer_sell_fill_to_next_oto') or {}).get('median_ms'), 2)}"
                " ms seen by an observer stream",
                lt["bar_median_gap_lt_5ms"]["met"],
            )
        )
        out.append(
            (
                "<= 1.1 REST calls per round trip on a long run",
                f"{_f(lt['bar_rest_calls_le_2']['value'], 3)} "
                f"({_f(lt['bar_rest_calls_le_2']['in_trade_loop'], 3)} in the trade loop)",
                lt["bar_rest_calls_le_2"]["value"] <= 1.1,
            )
        )
    out += footprint_bars(r.get("footprint"))
    out += cost_bars(r.get("cost"))
    out += failover_bars(r.get("failover"))
    sk = r.get("soak")
    if sk:
        out.append(
            (
                f"{sk['kills']} kill -9s under faults: no duplicate OTO, no lost fill, nothing open",
                f"{sk['otos_on_exchange']} OTOs, {sk['duplicate_or_unknown_otos']} duplicate or "
                f"unknown, {sk['fills_not_matching']} fills off, {sk['open_orders']} open, "
                f"{sk['tokens_left']} KOGE left (= the journal's dust: {sk['dust_in_journal']})",
                sk["held"],
            )
        )
    for s in r.get("scale", []):
        if "error" in s:
            out.append((f"{s['users']} users run", s["error"], False))
            continue
        n = s["users"]
        pss = s.get("user_pss_mib", {})
        if n <= 300:
            out.append(
                (
                    f"<= 10 MiB PSS per user process ({n} users)",
                    f"median {_f(pss.get('median'))} MiB, max {_f(pss.get('max'))} MiB",
                    pss.get("max") is not None and pss["max"] <= 10,
                )
            )
        if n >= 1000:
            out += moonshot_bars(s)
        elif n >= 300:
            out.append(
                (
                    "300 users running at once",
                    f"{s.get('user_processes_running')} user processes running, "
                    f"{s.get('users_with_first_order')} placed orders",
                    s.get("user_processes_running", 0) >= 300
                    and s.get("users_with_first_order", 0) >= 300,
                )
            )
            st = s.get("status_ms", {})
            out.append(
                (
                    "status p99 < 100 ms with 300 users trading",
                    f"p99 {_f(st.get('p99'))} ms (p50 {_f(st.get('p50'))} ms)",
                    st.get("p99") is not None and st["p99"] < 100,
                )
            )
    return out


def failover_bars(fo: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    if not fo:
        return []
    who = f"{fo['nodes']} nodes x {fo['users']} users"
    if "bar_le_60s" not in fo:
        return [(f"a host killed outright ({who})", fo.get("error", "not measured"), False)]
    w = fo["kill_to_next_order_seconds"]
    return [
        (
            f"a host killed outright costs its users at most a minute ({who}, lease "
            f"{fo['lease_seconds']:g} s)",
            f"kill -> next order: max {_f(w['max'], 1)} s, median {_f(w['median'], 1)} s for "
            f"{fo['with_next_order']}/{fo['orphaned_users']} users; every one a new owner: "
            f"{_f(fo['every_user_new_owner'])}",
            fo["bar_le_60s"]["met"],
        ),
        (
            "through the kill, no account with two round trips open at once (sim's record)",
            f"{fo['overlapping_round_trips']} overlaps in {fo['round_trips']} round trips",
            fo["invariant_held"],
        ),
    ]


def failover_md(fo: dict[str, Any]) -> list[str]:
    lines = [
        "## 8. Failover: a node of a pool killed outright (`--only failover`)",
        "",
        f"A throw-away PostgreSQL, the sim as a process (fill delay 0.05 s), {fo['nodes']} "
        f"`alphavol run --node` supervisors (own paths, capacity {fo['users']}, lease_seconds "
        f"{fo['lease_seconds']:g} (the default), production tuning of the user processes, one round trip a second) "
        f"sharing {fo['users']} users; the sessions stored once every node heartbeats. Once "
        f"every user traded, `kill -9` of node {fo['killed']}'s whole process group. Per user "
        "it ran: kill -> its next order, from the sim's own order stamps (only orders stamped "
        "after every process of the killed node was gone count). A lease renewed a fifth of "
        "a lease before the kill expires 4/5 to 1 lease after it; the survivors claim at "
        f"their next tick (every fifth of a lease). {fo.get('seconds')} s in all; load "
        f"average before: {_load(fo)}.",
        "",
    ]
    if "error" in fo:
        lines += [f"**The run failed**: {fo['error']}", ""]
    w = fo.get("kill_to_next_order_seconds")
    if w:
        lines += [
            "| figure | value |",
            "|---|---|",
            f"| every user trading, from the sessions stored | {_f(fo['all_trading_seconds'], 1)} s |",
            f"| users of the killed node | {fo['orphaned_users']} ({fo['with_next_order']} "
            "ordered again) |",
            f"| kill -> next order, min / median / p95 / max | {_f(w['min'], 1)} / "
            f"{_f(w['median'], 1)} / {_f(w['p95'], 1)} / {_f(w['max'], 1)} s |",
            f"| every one of them a new owner (the store's leases) | "
            f"{_f(fo['every_user_new_owner'])} ({', '.join(sorted(set(map(str, fo['new_owners'].values()))))}) |",
            f"| every user on exactly one surviving node (their status) | "
            f"{_f(fo.get('every_user_on_one_node'))} |",
            f"| user processes of the killed node alive 5 s after the kill | "
            f"{fo['user_processes_left_after_kill']} |",
        ]
    if "invariant_held" in fo:
        lines += [
            f"| round trips, all accounts; two open at once | {fo['round_trips']}; "
            f"{fo['overlapping_round_trips']} {fo['accounts_with_overlap'] or ''} |",
            f"| orders open after the survivors stopped (SIGTERM) | "
            f"{fo['open_orders_after_stop']} |",
        ]
    if w:
        lines.append(f"| processes left after the run | {_f(fo.get('stray_processes'))} |")
        lines += [
            "",
            "Each user, kill -> next order (s): " + ", ".join(f"{x:g}" for x in w["each"]),
        ]
    return lines


def footprint_bars(fp: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    if not fp:
        return []
    rows = ", ".join(f"{p['role']} {p['pss_mib']}" for p in fp["per_process"])
    rest = fp["rest_requests"] - fp["rest_by_path"].get("/w3w/stream", 0)
    return [
        (
            "the whole service with one user <= 45 MiB PSS (every process of the tree)",
            f"{_f(fp['tree_pss_mib'], 1)} MiB ({rows})",
            fp["tree_pss_mib"] <= 45,
        ),
        (
            "<= 20 REST requests for the one-user run (KOGE 400, 30 USDT trades)",
            f"{rest} ({fp['round_trips']} round trips)",
            rest <= 20,
        ),
    ]


def moonshot_bars(s: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    n = s["users"]
    first = s.get("first_order_all_users_seconds")
    st = s.get("status_ms", {})
    cpu = s.get("supervisor_cpu_percent_window")
    return [
        (
            f"{n} users, each placing its first order within 60 s of the start",
            f"{s.get('users_with_first_order')} placed; the last {_f(first, 1)} s after start",
            first is not None and first <= 60,
        ),
        (
            f"status p99 < 200 ms with {n} users trading",
            f"p99 {_f(st.get('p99'))} ms (p50 {_f(st.get('p50'))} ms)",
            st.get("p99") is not None and st["p99"] < 200,
        ),
        (
            f"supervisor CPU < 50 % of one core with {n} users at a 2 s interval",
            f"{_f(cpu, 1)} %",
            cpu is not None and cpu < 50,
        ),
    ]


def cost_bars(c: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    if not c:
        return []
    pp = c["usdt_per_point"]
    x1 = next((v for k, v in pp.items() if k.startswith("fixed x1")), None)
    best = next((v for k, v in pp.items() if k.startswith("best single")), None)
    auto = pp.get("auto")
    g1, g2 = c["goal_auto_le_30pct_of_x1"], c["goal_auto_within_10pct_of_best"]
    ratio = g1["ratio"]
    excess = g2["excess"]
    return [
        (
            f"auto <= 30 % of a fixed x1 token's USDT per point ({c['points']}-point day)",
            f"auto {_f(auto, 4)} vs x1 {_f(x1, 4)} USDT/point = "
            + (f"{ratio * 100:.1f} %" if ratio is not None else "-"),
            g1["met"],
        ),
        (
            "auto within 10 % of the best single token (hindsight)",
            f"auto {_f(auto, 4)} vs {c.get('best_token')} {_f(best, 4)} USDT/point = "
            + (f"{excess * 100:+.1f} %" if excess is not None else "-"),
            g2["met"],
        ),
    ]


def cost_md(c: dict[str, Any]) -> list[str]:
    run = c.get("run") or {}
    when = (
        f" Run on its own ({run.get('command')}, {run.get('date_utc')}, commit "
        f"{((run.get('tree') or {}).get('start') or {}).get('head')})."
        if run
        else ""
    )
    lines = [
        f"## 4. USDT per point: a {c['points']}-point day ({c['target_volume']} reported volume)",
        "",
        "One sim process with its default universe, each token with its own spread and "
        "volatility; every run a fresh account of 100,000 USDT, 30 USDT per trade, up to "
        f"{c.get('concurrency')} runs at a time ({c['seconds']} s; load average before: "
        f"{_load(c)}).{when} "
        "Cost = USDT lost (start balance - USDT now - tokens still held at the bid); points "
        "= floor(log2(the day's reported volume, all tokens)); the best single token is the "
        "cheapest of the fixed runs, i.e. chosen with hindsight.",
        "",
        "| | USDT per point |",
        "|---|---|",
    ]
    lines += [f"| {k} | {_f(v, 4)} |" for k, v in c["usdt_per_point"].items()]
    lines += [
        "",
        "| run | tokens traded | trades | points | volume | over | cost USDT | cost bp per "
        "credited USDT | USDT/point | seconds | exit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in c["runs"]:
        who = "seeds' planner" if r["kind"] == "seeds" else f"ours, {r['kind']}"
        lines.append(
            f"| {who} {r['token'] if r['kind'] != 'auto' else ''} | {'+'.join(r['tokens'])} "
            f"| {r['trades']} | {r['points']} | {_f(r['volume'])} | {_f(r['over'])} "
            f"| {_f(r['cost_usdt'], 4)} | {_f(r['cost_bp_per_credited_usdt'], 3)} "
            f"| {_f(r['usdt_per_point'], 4)} | {_f(r['run'].get('seconds'), 1)} "
            f"| {r['run'].get('exit', r['run'].get('error', '-'))} |"
        )
    chosen = next((r.get("chosen") for r in c["runs"] if r["kind"] == "auto"), None)
    if chosen:
        lines += [
            "",
            "auto's choices, batch by batch (expected bp per credited USDT): "
            + ", ".join(
                f"{x['token']} x{x['mul_point']:g} {x['expected_bp_per_credited_usdt']}"
                for x in chosen
            )
            + ".",
        ]
    lines += [
        "",
        "The universe at the start (spread from the book, mulPoint today and at the end): "
        + "; ".join(
            f"{t} {u['chain']} x{u['mul_point']}"
            + (f"->x{u['mul_point_at_end']}" if u["mul_point_at_end"] != u["mul_point"] else "")
            + f" {u['spread_bp']} bp, vol {u['volatility']}"
            for t, u in c["universe"].items()
        )
        + ".",
    ]
    return lines


def matrix_md(mx: dict[str, Any]) -> list[str]:
    lines = [
        "## 1. Planner accuracy: ours (the real user process) beside the seeds' planner",
        "",
        f"{len(mx['cells'])} cells, 30 USDT per trade, fill delay 0, interval 0, settle window "
        "(volume_check_delay_seconds) = lag + 0.3 s; both planners in the same run on the same "
        f"sims ({mx['concurrency']} jobs at a time, one sim process per counting rule x lag, "
        f"{mx['seconds']} s; load average before: {_load(mx)}). Figures from the sim's own record: trades = OTOs whose buy "
        "filled; credit/trade = the credit the sim granted per USDT of buy quote x the quote "
        "of a full 30 USDT buy, in the cell's basis; min = ceil(target / credit per trade); "
        "over = final volume (unlagged, in the basis) - target, in USDT and in trades' credit; "
        "cost = the account's USDT balance change (the few tokens left as dust are listed in "
        "results.json).",
        "",
        "| mul | counting | lag s | target | basis | credit/trade | min | ours trades "
        "| ours over | ours over (trades) | ours cost | seeds trades | seeds over "
        "| seeds over (trades) | seeds cost |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in mx["cells"]:
        c = row["cell"]
        o, s = row.get("ours") or {}, row.get("seeds") or {}
        flag = ""
        if o and not (o.get("reached") and (o.get("over_trades") or 0) <= 1):
            flag = " **!**"
        lines.append(
            f"| {c['mul']} | {c['counting']} | {c['lag']:g} | {c['target']} | {c['basis']} "
            f"| {_f(o.get('credit_per_trade'))} | {_f(o.get('min_trades'))} "
            f"| {_f(o.get('trades'))} | {_f(o.get('over_usdt'))} "
            f"| {_f(o.get('over_trades'), 3)}{flag} | {_f(o.get('cost_usdt'), 4)} "
            f"| {_f(s.get('trades'))} | {_f(s.get('over_usdt'))} "
            f"| {_f(s.get('over_trades'), 2)} | {_f(s.get('cost_usdt'), 4)} |"
        )
    ours = [r["ours"] for r in mx["cells"] if r.get("ours")]
    seeds = [r["seeds"] for r in mx["cells"] if r.get("seeds")]
    lines += [
        "",
        f"Totals: ours {sum(x['trades'] for x in ours)} trades, cost "
        f"{_f(sum(x['cost_usdt'] for x in ours), 2)} USDT, "
        f"over {_f(sum(x['over_usdt'] for x in ours), 2)} (sum over cells, basis units); "
        f"seeds {sum(x['trades'] for x in seeds)} trades, cost "
        f"{_f(sum(x['cost_usdt'] for x in seeds), 2)} USDT, "
        f"over {_f(sum(x['over_usdt'] for x in seeds), 2)}. "
        f"Minimum possible: {sum(x['min_trades'] or 0 for x in ours)} trades.",
    ]
    bad = [r for r in mx["cells"] if r.get("ours") and not r["ours"]["run"].get("exit") == 0]
    if bad:
        lines.append("")
        lines.append("Cells where our user process did not exit 0:")
        for r in bad:
            lines.append(f"- {r['cell']}: {r['ours']['run']}")
    seed_bounded = [r for r in mx["cells"] if r.get("seeds") and r["seeds"]["run"].get("stopped")]
    if seed_bounded:
        lines.append("")
        lines.append(
            "Seeds' runs stopped by the benchmark's bound (the figures are lower bounds): "
            + ", ".join(r["cell"].__repr__() for r in seed_bounded)
        )
    return lines


def footprint_md(fp: dict[str, Any]) -> list[str]:
    lines = [
        "## 5. One account's footprint (`python -m bench.footprint`)",
        "",
        f"{fp['run']}: exit {fp['exit']} after {fp['seconds']} s, {fp['round_trips']} round "
        f"trips. Largest sum of PSS over the tree at one instant: {_f(fp['tree_pss_mib'], 1)} "
        "MiB; each process at its own largest:",
        "",
        "| process | PSS MiB | of it anonymous |",
        "|---|---|---|",
    ]
    for p in fp["per_process"]:
        lines.append(f"| {p['role']} | {p['pss_mib']} | {p.get('pss_anon_mib')} |")
    lines += ["", "REST requests the sim counted, by path:", ""]
    lines += [f"- `{k}`: {v}" for k, v in sorted(fp["rest_by_path"].items())]
    return lines


def parallel_md(pa: dict[str, Any]) -> list[str]:
    lines = [
        "## 6. One user's two strategies: one after another vs side by side "
        "(`python -m bench.parallel`)",
        "",
        f"KOGE and AOP targets {pa['targets']}, fills take {pa['fill_delay_seconds']} s a leg; "
        f"side by side is {pa['speedup']}x as fast.",
        "",
        "| mode | seconds | OTOs | open after | trades over target |",
        "|---|---|---|---|---|",
    ]
    for run in pa["runs"]:
        lines.append(
            f"| {run['mode']} | {run['seconds']} | {run['otos']} | {run['open_orders']} "
            f"| {run['trades_over_target']} |"
        )
    return lines


def soak_md(sk: dict[str, Any]) -> list[str]:
    return [
        "## 7. kill -9 soak (`python -m bench.soak`)",
        "",
        f"{sk['kills']} kills of a trading user process at random moments, faults on "
        f"({sk['faults']}), then a final run to target: {sk['seconds']} s.",
        "",
        "```",
        *[f"{k}: {v}" for k, v in sk.items() if k not in ("faults", "loadavg_before")],
        "```",
    ]


def latency_md(lt: dict[str, Any]) -> list[str]:
    g, gi, gb = (
        lt["sell_fill_to_next_oto"],
        lt["sell_fill_to_next_oto_within_batch"],
        lt["sell_fill_to_next_oto_batch_boundary"],
    )
    per = ", ".join(f"{k} {v}" for k, v in lt["rest_calls_per_path_per_round_trip"].items())
    go = lt.get("observer_sell_fill_to_next_oto") or {}
    goi = lt.get("observer_sell_fill_to_next_oto_within_batch") or {}
    lines = [
        "## 2. Time per round trip (one user process, fill delay 0, interval 0)",
        "",
        f"KOGE, target {lt['target_volume']:g} (= {lt['round_trips']} round trips at 30 USDT), "
        f"{lt['batches']} batches; load average before: {_load(lt)}. Gaps from the sim's "
        "order stamps (whole milliseconds, so each gap is +-1 ms): sell leg FILLED -> next "
        "OTO received by the sim; the bar is judged on these. An observer (a second "
        "user-stream connection of the same account in the benchmark process) times the "
        "same gap at sub-millisecond resolution from the arrival of the two reports.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| round trips | {lt['round_trips']} in {_f(lt['span_seconds'], 3)} s |",
        f"| round trips per second | {_f(lt['round_trips_per_second'], 1)} |",
        f"| sell fill -> next OTO, all gaps (n={g['n']}) | median {_f(g['median_ms'], 1)} ms, "
        f"p99 {_f(g['p99_ms'], 1)} ms, max {_f(g['max_ms'], 1)} ms |",
        f"| ... inside a batch (n={gi['n']}) | median {_f(gi['median_ms'], 1)} ms, "
        f"p99 {_f(gi['p99_ms'], 1)} ms |",
        f"| ... across a batch boundary: volume re-read + settle (n={gb['n']}) | median "
        f"{_f(gb['median_ms'], 1)} ms, max {_f(gb['max_ms'], 1)} ms |",
        f"| same gap seen by an observer stream of the account (sub-ms; n={go.get('n')}) "
        f"| median {_f(go.get('median_ms'), 2)} ms, p99 {_f(go.get('p99_ms'), 2)} ms; inside "
        f"a batch median {_f(goi.get('median_ms'), 2)} ms, p99 {_f(goi.get('p99_ms'), 2)} ms |",
        f"| REST calls per round trip (all, incl. setup and volume reads) | "
        f"{_f(lt['rest_calls_per_round_trip'], 3)} |",
        f"| REST calls per round trip in the trade loop | "
        f"{_f(lt['rest_calls_per_round_trip_in_trade_loop'], 3)} |",
        f"| per endpoint, per round trip | {per} |",
    ]
    sb = lt.get("seeds_baseline")
    if sb:
        sg = sb["sell_fill_to_next_oto"]
        lines += [
            "",
            f"For comparison, the seeds' baseline (bench/seeds.py: our client, no fills "
            f"look-up, no journal) on the same sim right after: {sb['round_trips']} round "
            f"trips at {_f(sb['round_trips_per_second'], 1)}/s, sell fill -> next OTO median "
            f"{_f(sg['median_ms'], 1)} ms, p99 {_f(sg['p99_ms'], 1)} ms, "
            f"{_f(sb['rest_calls_per_round_trip'], 3)} REST calls per round trip ("
            + ", ".join(f"{k} {v}" for k, v in sb["rest_calls_per_path_per_round_trip"].items())
            + ").",
        ]
    return lines


def scale_md(sc: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 3. Scale: users in one `alphavol run` (real supervisor, forked user processes)",
        "",
        "One sim process (fill delay 0), KOGE, 30 USDT trades, trade_interval_seconds 2, a "
        "target no user reaches in the window. `first order` = from launching `alphavol run` "
        "to the last user's first order as stamped by the sim. PSS from "
        "/proc/PID/smaps_rollup half-way through the window; supervisor CPU from "
        "/proc/PID/stat over the window; `status` = sequential ControlClient StatusRequests "
        "every 100 ms during the window. Then `alphavol shutdown` and a check for stray "
        "processes.",
        "",
        "| users | first order, all users (s) | median user (s) | user processes alive "
        "mid-window | user PSS median / max (MiB) "
        "| supervisor PSS (MiB) | supervisor CPU in window | status p50 / p99 / max (ms), "
        "unanswered | trades/s (all users) | process starts, exits 16 (supervisor lost) "
        "| window (s) | shutdown (s) | stray | load avg before |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sc:
        if "error" in s:
            lines.append(f"| {s['users']} | error: {s['error']} |||||||||")
            continue
        p, st = s.get("user_pss_mib", {}), s.get("status_ms", {})
        lg = s.get("supervisor_log", {})
        lines.append(
            f"| {s['users']} | {_f(s.get('first_order_all_users_seconds'))} "
            f"| {_f(s.get('first_order_median_seconds'))} "
            f"| {_f(s.get('user_processes_running'))} "
            f"| {_f(p.get('median'))} / {_f(p.get('max'))} | {_f(s.get('supervisor_pss_mib'))} "
            f"| {_f(s.get('supervisor_cpu_percent_window'), 1)} % "
            f"| {_f(st.get('p50'))} / {_f(st.get('p99'))} / {_f(st.get('max'))}, "
            f"{_f(s.get('status_failures'))} of {_f(st.get('n'))} "
            f"| {_f(s.get('trades_per_second_all_users'), 1)} "
            f"| {_f(lg.get('process_starts'))}, {lg.get('exits_by_code', {}).get('16', 0)} "
            f"| {s['window']} | {_f(s.get('shutdown_seconds'))} "
            f"| {len(s.get('stray_processes', []))} | {_load(s)} |"
        )
    last = next((s for s in reversed(sc) if "user_median_rollup_mib" in s), None)
    if last:
        b = last["user_median_rollup_mib"]
        lines += [
            "",
            f"Median user process at {last['users']} users, smaps_rollup (MiB): "
            + ", ".join(f"{k} {v}" for k, v in b.items())
            + ". Other children of the supervisor: "
            + "; ".join(
                f"{v['cmd'][:60]} {v['pss']} MiB"
                for v in last.get("other_children_pss_mib", {}).values()
                if v.get("pss") is not None
            )
            + ".",
        ]
    return lines


def history_entry(r: dict[str, Any]) -> dict[str, Any]:
    """One line of bench/history.jsonl: when, on what code, under what load, each bar."""
    tree = r.get("tree") or {}
    loads = [x.get("loadavg_before") for x in [r.get("matrix") or {}, *(r.get("scale") or [])]]
    loads = [la[0] for la in loads if la]
    return {
        "date_utc": r["machine"]["date_utc"],
        "command": r.get("command"),
        "head": (tree.get("start") or {}).get("head"),
        "tree_changed": (tree.get("start") != tree.get("end")) if tree else None,
        "seconds": r.get("seconds"),
        "max_load1_before_parts": max(loads) if loads else None,
        "bars": [[name, value, ok] for name, value, ok in bars(r)],
    }


def history_md(hist: list[dict[str, Any]]) -> list[str]:
    if not hist:
        return []
    names: list[str] = []
    for h in hist:
        for name, _v, _ok in h["bars"]:
            if name not in names:
                names.append(name)
    lines = [
        "## Full runs so far (bench/history.jsonl)",
        "",
        "The same benchmark on the same machine at different times: the tree was still "
        "changing and other test suites shared the CPUs (load = the highest 1-minute load "
        "average seen before a part), so timing figures vary from run to run.",
        "",
        "| run (UTC) | commit | tree changed | load | " + " | ".join(names) + " |",
        "|---|---|---|---|" + "---|" * len(names),
    ]
    for h in hist:
        got = {name: (value, ok) for name, value, ok in h["bars"]}
        cells = []
        for name in names:
            if name in got:
                v, ok = got[name]
                cells.append(f"{'met' if ok else 'MISSED'}: {v}")
            else:
                cells.append("-")
        lines.append(
            f"| {h['date_utc']} | {h['head']} | {_f(h['tree_changed'])} "
            f"| {_f(h['max_load1_before_parts'], 1)} | " + " | ".join(cells) + " |"
        )
    return lines


def render(r: dict[str, Any], notes: list[str], hist: list[dict[str, Any]] | None = None) -> str:
    lines = [
        "# alphavol benchmarks",
        "",
        "Written by `python -m bench` (bench/report.py) from measurement; the raw figures "
        "are in the JSON file beside this one.",
        "",
        _machine(r),
        "",
        _tree(r),
        "",
        *([_alone(r), ""] if r.get("parts_run_alone") else []),
        "Run it: `.venv/bin/python -m bench` (everything, about 25 minutes; writes "
        "bench/RESULTS.md and bench/results.json), `--quick` (fewer cells, 10 users, under "
        "2 minutes; writes RESULTS-quick.md / results-quick.json), `--only "
        "matrix,latency,scale,cost,failover` for some parts (their figures replace theirs "
        "in the JSON file, the others stay; `--only failover`: 1 to 2 minutes; `python -m "
        "bench.cost` runs section 4 alone and renders it in here). Loopback only; every process it starts is "
        "stopped by pid and checked for.",
        "",
        "## Bars",
        "",
        "| bar | measured | |",
        "|---|---|---|",
    ]
    for name, value, ok in bars(r):
        lines.append(f"| {name} | {value} | {_bar(ok)} |")
    if notes:
        lines += ["", "### Missed bars: by how much, why, what would fix it", ""]
        lines += notes
    if r.get("matrix"):
        lines += ["", *matrix_md(r["matrix"])]
    if r.get("latency"):
        lines += ["", *latency_md(r["latency"])]
    if r.get("scale"):
        lines += ["", *scale_md(r["scale"])]
    if r.get("cost"):
        lines += ["", *cost_md(r["cost"])]
    if r.get("footprint"):
        lines += ["", *footprint_md(r["footprint"])]
    if r.get("parallel"):
        lines += ["", *parallel_md(r["parallel"])]
    if r.get("soak"):
        lines += ["", *soak_md(r["soak"])]
    if r.get("failover"):
        lines += ["", *failover_md(r["failover"])]
    if hist:
        lines += ["", *history_md(hist)]
    lines.append("")
    return "\n".join(lines)
