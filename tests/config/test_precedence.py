"""Layering: user override > strategy > global default, for every setting."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from config.loader import load_config
from config.schema import AUTO_ONLY_KEYS, OVERRIDE_RULES, TUNABLE_RULES

# setting -> (global default, strategy value, user override value); neighbours differ.
LAYER_VALUES = {
    "target_chain": ("BSC", "ETH", "SOL"),
    "volume_basis": ("traded", "reported", "traded"),
    "single_trade_amount_usdt": ("11", "22.5", "33.25"),
    "trade_interval_seconds": ("0", "2.5", "7"),
    "buy_offset_percentage": ("0.1", "2", "49.9"),
    "sell_profit_percentage": ("0", "1.5", "3"),
    "order_timeout_seconds": ("10", "20", "30"),
    "volume_check_delay_seconds": ("0.5", "1", "9"),
    "max_price_volatility_percentage": ("1", "2", "3"),
    "max_retry_attempts": ("0", "5", "9"),
    "retry_delay_seconds": ("1", "2", "3"),
    "max_daily_cost_usdt": ("10", None, "30"),
    "stop_grace_seconds": ("1", "2", "3"),
    "candidates": (["LIGHT"], ["AOP", "TINY"], ["GOATED"]),
    "chains": (["BSC"], ["Solana", "Sui"], ["BSC", "Sui"]),
    "min_mul_point": ("1", "2", "4"),
    "max_spread_percentage": ("0.5", None, "0.2"),
    "min_balance_usdt": ("0", "100", "250.5"),
    "amount_jitter_percentage": ("0", "10", "25"),
    "interval_jitter_seconds": ("0", "0.5", "3"),
}


def _yaml_value(name: str, text):
    """The value as YAML would give it (numbers unquoted)."""
    if text is None or TUNABLE_RULES[name].kind in ("word", "words", "choice", "text"):
        return text
    return float(text) if "." in text else int(text)


def _expected(name: str, text):
    kind = TUNABLE_RULES[name].kind
    if kind == "words":
        return tuple(text)
    if text is None or kind in ("word", "choice"):
        return text
    return {"decimal": Decimal, "float": float, "int": int}[kind](text)


def _load(tmp_path, glob: dict, strategy: dict, override: dict | None):
    given = {*glob, *strategy, *(override or {})}
    # the keys that narrow the token's choice apply only with target_token: auto
    token = "auto" if given & set(AUTO_ONLY_KEYS) else "KOGE"
    doc = {
        "global_settings": glob,
        "strategies": [
            {"strategy_id": "s1", "target_token": token, "target_volume": 100, "user_ids": [1, 2]}
            | strategy
        ],
    }
    if override is not None:
        doc["user_overrides"] = [{"user_id": 1, "strategies": {"s1": override}}]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return {s.user_id: s for s in load_config(path).settings}


def test_every_tunable_setting_is_covered():
    assert set(LAYER_VALUES) == set(TUNABLE_RULES)


@pytest.mark.parametrize("name", sorted(LAYER_VALUES))
def test_override_beats_strategy_beats_global(tmp_path, name):
    g, s, u = LAYER_VALUES[name]
    gv, sv, uv = (_yaml_value(name, v) for v in (g, s, u))

    only_global = _load(tmp_path, {f"default_{name}": gv}, {}, None)
    assert getattr(only_global["1"], name) == _expected(name, g)

    with_strategy = _load(tmp_path, {f"default_{name}": gv}, {name: sv}, None)
    assert getattr(with_strategy["1"], name) == _expected(name, s)

    full = _load(tmp_path, {f"default_{name}": gv}, {name: sv}, {name: uv})
    assert getattr(full["1"], name) == _expected(name, u)
    assert getattr(full["2"], name) == _expected(name, s)  # user 2 has no override

    # An override without a strategy value still beats the global default.
    skip_strategy = _load(tmp_path, {name: gv}, {}, {name: uv})  # unprefixed global key
    assert getattr(skip_strategy["1"], name) == _expected(name, u)
    assert getattr(skip_strategy["2"], name) == _expected(name, g)


def test_strategy_only_settings_are_overridable_per_user(tmp_path):
    assert set(OVERRIDE_RULES) - set(TUNABLE_RULES) == {
        "enabled",
        "target_token",
        "target_volume",
        "target_points",
    }
    got = _load(
        tmp_path,
        {},
        {"enabled": False, "target_token": "KOGE", "target_volume": 100},
        {"enabled": True, "target_token": "AOP", "target_volume": 200},
    )
    assert (got["1"].enabled, got["1"].target_token, got["1"].target_volume) == (
        True,
        "AOP",
        Decimal(200),
    )
    assert (got["2"].enabled, got["2"].target_token, got["2"].target_volume) == (
        False,
        "KOGE",
        Decimal(100),
    )


def test_a_target_in_points_replaces_a_target_in_volume_and_back(tmp_path):
    got = _load(tmp_path, {}, {"target_volume": 100}, {"target_points": 8})
    assert (got["1"].target_volume, got["1"].target_points) == (Decimal(256), 8)
    assert (got["2"].target_volume, got["2"].target_points) == (Decimal(100), None)

    strat = {"target_points": 5}
    doc_strategy = {"strategy_id": "s1", "target_token": "KOGE", "user_ids": [1, 2]} | strat
    path = tmp_path / "q.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "strategies": [doc_strategy],
                "user_overrides": [{"user_id": 2, "strategies": {"s1": {"target_volume": 300}}}],
            }
        )
    )
    got = {s.user_id: s for s in load_config(path).settings}
    assert (got["1"].target_volume, got["1"].target_points) == (Decimal(32), 5)
    assert (got["2"].target_volume, got["2"].target_points) == (Decimal(300), None)


def test_effective_settings_only_of_enabled_pairs(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "strategies": [
                    {
                        "strategy_id": "s1",
                        "target_token": "KOGE",
                        "target_volume": 100,
                        "user_ids": [1, 2],
                    }
                ],
                "user_overrides": [{"user_id": 2, "strategies": {"s1": {"enabled": False}}}],
            }
        )
    )
    cfg = load_config(path)
    assert [s.user_id for s in cfg.effective()] == ["1"]
    assert cfg.user_ids() == ["1"]
