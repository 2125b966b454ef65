"""What a reload changes, from the old and new configs alone (no processes)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml

from config.loader import load_config
from config.settings import EffectiveSettings
from supervisor.reload_plan import plan_reload, refusals, settings_by_user


def es(sid: str, user: str, target: int = 100, **kw) -> EffectiveSettings:
    return EffectiveSettings(
        strategy_id=sid,
        strategy_name=sid.upper(),
        user_id=user,
        target_token="KOGE",
        target_volume=Decimal(target),
        **kw,
    )


def test_same_config_plans_nothing():
    old = {"1": [es("a", "1"), es("b", "1")], "2": [es("a", "2")]}
    plan = plan_reload(old, {u: list(s) for u, s in old.items()})
    assert plan.empty
    assert (plan.added, plan.removed, plan.changed, plan.new_strategies) == ({}, [], {}, {})


def test_users_added_and_removed():
    old = {"1": [es("a", "1")], "2": [es("a", "2")]}
    new = {"1": [es("a", "1")], "3": [es("a", "3"), es("b", "3")]}
    plan = plan_reload(old, new)
    assert plan.removed == ["2"]
    assert plan.added == {"3": [es("a", "3"), es("b", "3")]}
    assert plan.changed == {} and plan.new_strategies == {}


def test_a_changed_setting_changes_only_that_user():
    old = {"1": [es("a", "1")], "2": [es("a", "2")]}
    new = {"1": [es("a", "1", target=300)], "2": [es("a", "2")]}
    plan = plan_reload(old, new)
    assert plan.changed == {"1": [es("a", "1", target=300)]}
    assert plan.new_strategies == {} and not plan.added and not plan.removed


def test_a_new_strategy_is_a_change_and_named():
    old = {"1": [es("a", "1")]}
    new = {"1": [es("a", "1"), es("b", "1")]}
    plan = plan_reload(old, new)
    assert plan.changed == {"1": new["1"]}
    assert plan.new_strategies == {"1": ["b"]}


def test_a_dropped_or_reordered_strategy_is_a_change_without_new_work():
    old = {"1": [es("a", "1"), es("b", "1")]}
    dropped = plan_reload(old, {"1": [es("a", "1")]})
    assert dropped.changed == {"1": [es("a", "1")]} and dropped.new_strategies == {}
    reordered = plan_reload(old, {"1": [es("b", "1"), es("a", "1")]})
    assert list(reordered.changed) == ["1"] and reordered.new_strategies == {}


def _config(tmp_path: Path, name: str, runtime: str, users: list[str], enabled: bool = True):
    doc = {
        "paths": {"data_dir": str(tmp_path / "data"), "runtime_dir": str(tmp_path / runtime)},
        "strategies": [
            {
                "strategy_id": "s1",
                "strategy_name": "S1",
                "target_token": "KOGE",
                "target_volume": 100,
                "user_ids": users,
                "enabled": enabled,
            }
        ],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def test_settings_by_user_leaves_disabled_strategies_out_and_runtime_dir_is_fixed(tmp_path):
    old = _config(tmp_path, "old.yaml", "run", ["1", "2"])
    assert sorted(settings_by_user(old)) == ["1", "2"]
    assert settings_by_user(_config(tmp_path, "off.yaml", "run", ["1"], enabled=False)) == {}
    assert refusals(old, _config(tmp_path, "same.yaml", "run", ["3"])) == []
    moved = refusals(old, _config(tmp_path, "moved.yaml", "run2", ["1"]))
    assert len(moved) == 1 and "runtime_dir" in moved[0]
