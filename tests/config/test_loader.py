"""The YAML format: what loads, what each setting becomes, and where errors point."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.cli import check
from config.loader import ConfigError, config_from_dict, example_config_path, load_config

from .conftest import MINIMAL, write_config

# (name, yaml, [(line, path, words in the message)])
BROKEN = [
    (
        "unknown key",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            colour: blue
            user_ids: [1]
        """,
        [(5, "strategies[0].colour", "unknown key")],
    ),
    (
        "typo with did-you-mean",
        """\
        global_settings:
          default_single_trade_amout_usdt: 30
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            user_ids: [1]
        """,
        [
            (
                2,
                "global_settings.default_single_trade_amout_usdt",
                "did you mean 'default_single_trade_amount_usdt'",
            )
        ],
    ),
    (
        "wrong type",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: lots
            enabled: maybe
            user_ids: [1]
        """,
        [
            (4, "strategies[0].target_volume", "expected a number"),
            (5, "strategies[0].enabled", "expected true or false"),
        ],
    ),
    (
        "bad ranges",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 0
            single_trade_amount_usdt: 0.05
            buy_offset_percentage: 50.5
            sell_profit_percentage: -1
            trade_interval_seconds: -0.5
            user_ids: [1]
        """,
        [
            (4, "strategies[0].target_volume", "> 0"),
            (5, "strategies[0].single_trade_amount_usdt", ">= 0.1"),
            (6, "strategies[0].buy_offset_percentage", "<= 50"),
            (7, "strategies[0].sell_profit_percentage", ">= 0"),
            (8, "strategies[0].trade_interval_seconds", ">= 0"),
        ],
    ),
    (
        "duplicate strategy id",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            user_ids: [1]
          - strategy_id: koge
            target_token: AOP
            target_volume: 100
            user_ids: [2]
        """,
        [(6, "strategies[1].strategy_id", "duplicate strategy id 'koge'")],
    ),
    (
        "dangling overrides",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            user_ids: [1, 2]
        user_overrides:
          - user_id: 7
            strategies:
              koge: {single_trade_amount_usdt: 50}
          - user_id: 2
            strategies:
              kog: {single_trade_amount_usdt: 50}
        """,
        [
            (7, "user_overrides[0].user_id", "user 7 is not in any strategy"),
            (12, "user_overrides[1].strategies.kog", "did you mean 'koge'"),
        ],
    ),
    (
        "overrides that cannot be used",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            user_ids: [1, 2]
          - strategy_id: aop
            target_token: AOP
            target_volume: 100
            user_ids: [3]
        user_overrides:
          - just a user
          - strategies: {koge: {}}
          - user_id: 1
            proxy: 8080
            colour: blue
            strategies:
              koge: {strategy_id: x, target_volume: 5, target_points: 3}
              aop: {single_trade_amount_usdt: 5}
          - user_id: 1
          - user_id: 2
            strategies: [koge]
        """,
        [
            (11, "user_overrides[0]", "expected a mapping with user_id and strategies"),
            (12, "user_overrides[1]", "missing required key 'user_id'"),
            (14, "user_overrides[2].proxy", "expected a proxy URL"),
            (15, "user_overrides[2].colour", "unknown key 'colour'"),
            (
                17,
                "user_overrides[2].strategies.koge.strategy_id",
                "'strategy_id' belongs to the strategy and cannot be overridden per user",
            ),
            (17, "user_overrides[2].strategies.koge.target_points", "not both"),
            (
                18,
                "user_overrides[2].strategies.aop",
                "user 1 is not in the user_ids of strategy 'aop'",
            ),
            (
                19,
                "user_overrides[3].user_id",
                "user 1 already has an override at user_overrides[2]; merge the two",
            ),
            (21, "user_overrides[4].strategies", "expected a mapping of strategy id -> settings"),
        ],
    ),
    (
        "strategies and overrides not lists",
        """\
        strategies: {koge: 1}
        user_overrides: {user_id: 1}
        """,
        [
            (1, "strategies", "expected a non-empty list of strategies, got a mapping"),
            (2, "user_overrides", "expected a list of user overrides, got a mapping"),
        ],
    ),
    (
        "both and neither target",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            target_points: 7
            user_ids: [1]
          - strategy_id: aop
            target_token: AOP
            user_ids: [1]
        """,
        [
            (5, "strategies[0].target_points", "not both"),
            (7, "strategies[1]", "set target_volume or target_points"),
        ],
    ),
    (
        "bad user ids",
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            user_ids:
              - 1
              - "../etc"
              - 1
        """,
        [
            (7, "strategies[0].user_ids[1]", "must be 1-64 letters"),
            (8, "strategies[0].user_ids[2]", "listed twice"),
        ],
    ),
    (
        "token choice and balance keys",
        """\
        global_settings:
          default_min_balance_usdt: -5
        strategies:
          - strategy_id: auto
            target_token: auto
            target_volume: 100
            candidates: [LIGHT, AOP, light]
            chains: BSC
            max_spread_percentage: 0
            amount_jitter_percentage: 60
            user_ids: [1]
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            min_mul_point: 4
            interval_jitter_seconds: -1
            user_ids: [1]
        """,
        [
            (2, "global_settings.default_min_balance_usdt", ">= 0"),
            (7, "strategies[0].candidates", "item 2: 'light' is listed twice"),
            (8, "strategies[0].chains", "expected a non-empty list of names"),
            (9, "strategies[0].max_spread_percentage", "> 0"),
            (10, "strategies[0].amount_jitter_percentage", "<= 50"),
            (15, "strategies[1].min_mul_point", "applies only with target_token: auto"),
            (16, "strategies[1].interval_jitter_seconds", ">= 0"),
        ],
    ),
    (
        "bad YAML syntax",
        """\
        strategies:
          - strategy_id: koge
            target_token: [KOGE
            user_ids: [1]
        """,
        [(3, "", "YAML syntax error: the [ opened here is never closed")],
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_exits_2_naming_path_and_line(tmp_path, name, text, expected):
    path = write_config(tmp_path, text)
    result = CliRunner().invoke(check, ["--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for line, key_path, words in expected:
        prefix = f"{path}:{line}: " + (f"{key_path}: " if key_path else "")
        matching = [ln for ln in result.output.splitlines() if ln.startswith(prefix)]
        assert matching, f"no line starting {prefix!r} in:\n{result.output}"
        assert any(words in ln for ln in matching), result.output


def test_an_override_of_a_strategy_with_errors_is_not_reported_again(tmp_path):
    path = write_config(
        tmp_path,
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: lots
            user_ids: [1]
        user_overrides:
          - user_id: 1
            strategies:
              koge: {single_trade_amount_usdt: 50}
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [(i.line, i.path) for i in err.value.issues] == [(4, "strategies[0].target_volume")]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = write_config(
        tmp_path,
        """\
        global_settings:
          max_concurrent_users: 0
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: -5
            buy_offset_percentage: 80
            user_ids: [1]
        extra_section: {}
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    paths = [(i.path, i.line) for i in err.value.issues]
    assert paths == [
        ("global_settings.max_concurrent_users", 2),
        ("strategies[0].target_volume", 6),
        ("strategies[0].buy_offset_percentage", 7),
        ("extra_section", 9),
    ]
    assert str(err.value).count("\n") == 3  # one line per issue
    assert all(i.file == str(path) for i in err.value.issues)


def test_real_cli_subprocess_reports_errors_and_exit_2(tmp_path):
    path = write_config(
        tmp_path,
        """\
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volumee: 100
            user_ids: [1]
        """,
    )
    exe = Path(sys.executable).parent / "alphavol"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHAVOL")}
    env["ALPHAVOL_CONFIG"] = str(path)  # the environment variable instead of --config
    proc = subprocess.run(
        [str(exe), "check"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{path}:4: strategies[0].target_volumee: unknown key" in proc.stderr
    assert "did you mean 'target_volume'" in proc.stderr


def test_example_config_is_valid_and_has_the_seed_shape():
    cfg = load_config(example_config_path())
    ids = [(s.strategy_id, s.user_id) for s in cfg.effective()]
    assert ids == [
        ("koge_volume_boost", "1"),
        ("koge_volume_boost", "2"),
        ("koge_volume_boost", "3"),
        ("aop", "1"),
    ]
    by = {(s.strategy_id, s.user_id): s for s in cfg.effective()}
    assert by[("koge_volume_boost", "1")].single_trade_amount_usdt == Decimal("50")  # override
    assert by[("koge_volume_boost", "2")].single_trade_amount_usdt == Decimal("30")
    assert by[("aop", "1")].target_volume == Decimal(2**15)
    assert cfg.user_ids() == ["1", "2", "3"]
    assert cfg.parallel_for(1) and not cfg.parallel_for(2)  # user 1's override


def test_parallel_strategies_per_user_or_by_default_and_its_errors(tmp_path):
    text = """\
        global_settings:
          parallel_strategies: true
        strategies:
          - strategy_id: koge
            target_token: KOGE
            target_volume: 100
            user_ids: [1, 2]
        user_overrides:
          - user_id: 2
            parallel_strategies: false
        """
    cfg = load_config(write_config(tmp_path, text))
    assert cfg.parallel_for("1") and not cfg.parallel_for("2")
    bad = text.replace("parallel_strategies: false", "parallel_strategies: sometimes")
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, bad))
    (issue,) = err.value.issues
    assert issue.path == "user_overrides[0].parallel_strategies" and issue.line == 10


def test_seed_config_is_valid_as_written(tmp_path):
    # The format of seeds 002/003, verbatim in its keys (defaults without the prefix too).
    path = write_config(
        tmp_path,
        """\
        global_settings:
          default_buy_offset_percentage: 10
          default_sell_profit_percentage: 10
          default_trade_interval_seconds: 1
          default_single_trade_amount_usdt: 30
          default_volume_check_delay_seconds: 3
          max_concurrent_users: 10
          max_price_volatility_percentage: 5.0
          max_retry_attempts: 3
          retry_delay_seconds: 5
          order_timeout_seconds: 300
        strategies:
          - strategy_id: "koge_volume_boost"
            strategy_name: "KOGE 刷量策略"
            enabled: true
            target_token: KOGE
            target_chain: BSC
            target_volume: 16384
            single_trade_amount_usdt: 30
            trade_interval_seconds: 1
            buy_offset_percentage: 0.5
            sell_profit_percentage: 1.0
            order_timeout_seconds: 180
            user_ids: [1, 2, 3]
        user_overrides:
          - user_id: 1
            strategies:
              koge_volume_boost:
                single_trade_amount_usdt: 50
        """,
    )
    cfg = load_config(path)
    assert [s.single_trade_amount_usdt for s in cfg.effective()] == [
        Decimal("50"),
        Decimal("30"),
        Decimal("30"),
    ]
    assert cfg.max_concurrent_users == 10
    assert cfg.effective()[0].strategy_name == "KOGE 刷量策略"


def test_money_is_exact_decimal_and_ids_are_strings(tmp_path):
    path = write_config(
        tmp_path,
        """\
        strategies:
          - strategy_id: s
            target_token: KOGE
            target_volume: 1000.1
            single_trade_amount_usdt: 0.1
            buy_offset_percentage: 0.3
            user_ids: [1, alice, "007"]
        """,
    )
    cfg = load_config(path)
    first = cfg.effective()[0]
    assert first.single_trade_amount_usdt == Decimal("0.1")
    assert str(first.single_trade_amount_usdt) == "0.1"
    assert first.buy_offset_percentage == Decimal("0.3")
    assert first.target_volume == Decimal("1000.1")
    assert cfg.user_ids() == ["1", "alice", "007"]
    assert cfg.for_user(1) == [first]


def test_paths_relative_to_the_config_file_and_defaults(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    cfg = load_config(write_config(sub, MINIMAL))
    assert cfg.paths.data_dir == str(sub / "var" / "data")
    assert cfg.paths.runtime_dir == str(sub / "var" / "run")
    assert cfg.source == str(sub / "cfg.yaml")
    cfg = load_config(
        write_config(sub, MINIMAL + f"paths:\n  data_dir: ../data\n  runtime_dir: {tmp_path}/rt\n")
    )
    assert cfg.paths.data_dir == str(tmp_path / "data")
    assert cfg.paths.runtime_dir == str(tmp_path / "rt")


def test_top_level_sections_map_onto_settings(tmp_path):
    cfg = load_config(
        write_config(
            tmp_path,
            MINIMAL
            + """\
exchange:
  base_url: http://127.0.0.1:8080/
  ws_url: ws://127.0.0.1:8080/w3w/stream
  request_timeout_seconds: 2.5
schedule:
  daily_restart: false
  offset_seconds: 60
logging:
  level: debug
  format: json
""",
        )
    )
    assert cfg.exchange.base_url == "http://127.0.0.1:8080"
    assert cfg.exchange.request_timeout_seconds == 2.5
    assert cfg.schedule.daily_restart is False
    assert cfg.schedule.offset_seconds == 60.0
    assert cfg.logging.level == "DEBUG"
    assert cfg.logging.format == "json"


def test_disabled_strategy_is_validated_but_not_run(tmp_path):
    cfg = load_config(
        write_config(
            tmp_path,
            MINIMAL
            + """\
  - strategy_id: paused
    enabled: false
    target_token: AOP
    target_points: 10
    user_ids: [9]
""",
        )
    )
    assert {s.strategy_id for s in cfg.effective()} == {"koge"}
    assert "9" not in cfg.user_ids()
    assert [s.enabled for s in cfg.strategies] == [True, False]


def test_config_from_dict_converts_floats_exactly(tmp_path):
    cfg = config_from_dict(
        {
            "strategies": [
                {
                    "strategy_id": "s",
                    "target_token": "KOGE",
                    "target_volume": 100,
                    "single_trade_amount_usdt": 0.1,
                    "user_ids": [5],
                }
            ]
        },
        base_dir=tmp_path,
    )
    assert cfg.effective()[0].single_trade_amount_usdt == Decimal("0.1")
    with pytest.raises(ConfigError) as err:
        config_from_dict({"strategies": []}, base_dir=tmp_path)
    assert err.value.issues[0].path == "strategies"
    assert err.value.issues[0].line is None


def test_missing_file_is_a_config_error(tmp_path):
    result = CliRunner().invoke(check, ["--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "alphavol init" in result.output


def test_auto_token_keys_layer_like_any_setting(tmp_path):
    path = write_config(
        tmp_path,
        """\
        global_settings:
          default_min_balance_usdt: 150.5
          amount_jitter_percentage: 10
        strategies:
          - strategy_id: cheapest
            target_token: auto
            target_points: 14
            candidates: [LIGHT, AOP, GOATED]
            chains: [BSC]
            min_mul_point: 2
            max_spread_percentage: 0.1
            interval_jitter_seconds: 0.5
            user_ids: [1, 2]
        user_overrides:
          - user_id: 2
            strategies:
              cheapest: {min_balance_usdt: 0, candidates: [AOP]}
        """,
    )
    one, two = load_config(path).effective()
    assert one.auto and one.target_volume == 2**14
    assert one.candidates == ("LIGHT", "AOP", "GOATED") and one.chains == ("BSC",)
    assert (one.min_mul_point, one.max_spread_percentage) == (Decimal(2), Decimal("0.1"))
    assert one.min_balance_usdt == Decimal("150.5") and one.amount_jitter_percentage == 10
    assert one.interval_jitter_seconds == 0.5
    assert two.min_balance_usdt == 0 and two.candidates == ("AOP",)
    defaults = config_from_dict(
        {
            "strategies": [
                {"strategy_id": "k", "target_token": "KOGE", "target_volume": 9, "user_ids": [1]}
            ]
        },
        base_dir=tmp_path,
    ).effective()[0]
    assert not defaults.auto and defaults.min_balance_usdt == 100
    assert defaults.amount_jitter_percentage == 0 and defaults.interval_jitter_seconds == 0
