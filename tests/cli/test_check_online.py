"""Issue 12, `alphavol check --online` catches what `run` would hit: every target token and
chain against the exchange's token list (with a did-you-mean), every stored session (one
call per user), each problem with its config line; exit 2. Against the simulator."""

from __future__ import annotations

from tests.cli.conftest import alphavol, clean_env
from tests.supervisor.harness import Deployment

CONFIG = """\
exchange:
  base_url: {base_url}
  ws_url: {ws_url}
  request_timeout_seconds: 5
paths:
  data_dir: data
  runtime_dir: run
strategies:
  - strategy_id: typo
    target_token: KOGEE
    target_chain: BSC
    target_volume: 100
    user_ids: [1]
  - strategy_id: chain
    target_token: AOP
    target_chain: BCS
    target_volume: 100
    user_ids: [1, 2]
  - strategy_id: good
    target_token: KOGE
    target_volume: 100
    user_ids: [2, 3]
  - strategy_id: cheapest
    target_token: auto
    candidates: [LIGHT, AOPP]
    chains: [BSC, Solanna]
    target_volume: 100
    user_ids: [1]
user_overrides:
  - user_id: 3
    strategies:
      good:
        target_token: TINYY
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


async def test_check_online_names_every_problem_with_its_line(sim):
    d = Deployment(base_url=sim.base_url, ws_url=sim.ws_url)
    try:
        text = CONFIG.format(base_url=sim.base_url, ws_url=sim.ws_url)
        cfg = d.config_path
        cfg.write_text(text)
        d.data = cfg.parent / "data"
        d.store({u: sim.credentials(f"account-{u}") for u in ("1", "2")})  # 3 has none
        await sim.admin.set_faults(session_expired=["account-2"])
        env = clean_env(ALPHAVOL_SECRET_KEY=d.key.decode())
        calls_before = (await sim.admin.account("account-1"))["requests"]

        offline = await alphavol("check", "--config", str(cfg), env=env)
        assert offline.returncode == 2  # only user 3's missing session is visible offline
        assert "KOGEE" not in offline.stderr and "BCS" not in offline.stderr

        res = await alphavol("check", "--online", "--config", str(cfg), env=env)
        assert res.returncode == 2, res.stdout + res.stderr
        err = res.stderr
        assert "Traceback" not in err
        assert (
            f"{cfg}:{line_of(text, 'KOGEE')}: strategies[0].target_token: KOGEE is not in the"
            " exchange's token list; did you mean 'KOGE'?" in err
        ), err
        bcs = (
            f"{cfg}:{line_of(text, 'BCS')}: strategies[1].target_chain: BCS is not a chain of"
            " the exchange's token list; did you mean 'BSC'?"
        )
        assert err.count(bcs) == 1, err  # one line for the place, not one per user
        assert (
            f"{cfg}:{line_of(text, 'TINYY')}: user_overrides[0].strategies.good.target_token:"
            " TINYY is not in the exchange's token list; did you mean 'TINY'?" in err
        ), err
        assert (
            f"{cfg}:{line_of(text, 'user_ids: [1, 2]')}: strategies[1].user_ids[1]: user 2:"
            " session expired" in err
        ), err
        assert "run `alphavol users add 2 --curl FILE`" in err, err  # a command that works
        assert (
            f"{cfg}:{line_of(text, 'user_ids: [2, 3]')}: strategies[2].user_ids[1]: user 3 (good)"
            " has no stored session" in err
        ), err
        assert (
            f"{cfg}:{line_of(text, 'AOPP')}: strategies[3].candidates: AOPP is not a token of"
            " the exchange's token list; did you mean 'AOP'?" in err
        ), err
        assert (
            f"{cfg}:{line_of(text, 'Solanna')}: strategies[3].chains: Solanna is not a chain of"
            " the exchange's token list; did you mean 'SOLANA'?" in err
        ), err
        assert "7 problem(s)" in err, err
        # one user-volume call per stored user, whatever the number of its strategies
        after = (await sim.admin.account("account-1"))["requests"]
        volume_calls = {p: n - calls_before.get(p, 0) for p, n in after.items() if "volume" in p}
        assert list(volume_calls.values()) == [1], volume_calls

        # everything fixed: exit 0, and it says what was verified
        fixed = (
            (text.replace("KOGEE", "KOGE").replace("BCS", "BSC").replace("TINYY", "TINY"))
            .replace("AOPP", "AOP")
            .replace("Solanna", "Solana")
            .replace("user_ids: [2, 3]", "user_ids: [2]")
        )
        fixed = fixed[: fixed.index("user_overrides:")]
        cfg.write_text(fixed)
        await sim.admin.set_faults(session_expired=[])
        res = await alphavol("check", "--online", "--config", str(cfg), env=env)
        assert res.returncode == 0, res.stderr
        assert "every token and chain" in res.stdout and "session is alive" in res.stdout
    finally:
        d.cleanup()


def test_did_you_mean_ignores_case_and_stays_quiet_when_nothing_is_close():
    from config.online import _did_you_mean

    assert _did_you_mean("kogee", ["KOGE", "AOP"]) == "; did you mean 'KOGE'?"
    assert _did_you_mean("BCS", ["BSC", "ETH", "SOL"]) == "; did you mean 'BSC'?"
    assert _did_you_mean("XYZ", ["KOGE"]) == ""
