"""What a reload changes: old config vs new config, as a pure function.

``plan_reload`` compares the strategies each user runs now with the ones the new config
gives them and says which users are added, removed or changed, and which got strategies
they did not have; ``refusals`` says why a new config cannot be applied at all. Nothing
here touches a process or a socket: the arbiter applies the plan (``Fleet.apply_reload``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.settings import EffectiveSettings

Settings = Mapping[str, Sequence[EffectiveSettings]]  # user_id -> strategies, in config order


@dataclass(frozen=True)
class ReloadPlan:
    added: dict[str, list[EffectiveSettings]] = field(default_factory=dict)  # new users
    removed: list[str] = field(default_factory=list)  # users the new config no longer has
    # kept users whose strategies changed (a setting, a strategy added, dropped or moved):
    # their full new list, for UpdateSettings
    changed: dict[str, list[EffectiveSettings]] = field(default_factory=dict)
    # kept users -> the strategy ids they did not have (a finished user has work again)
    new_strategies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def settings_by_user(config: Any) -> dict[str, list[EffectiveSettings]]:
    """user_id -> the enabled strategies of that user, in config order (``AppConfig``)."""
    out: dict[str, list[EffectiveSettings]] = {}
    for s in config.effective():
        out.setdefault(s.user_id, []).append(s)
    return out


def plan_reload(old: Settings, new: Settings) -> ReloadPlan:
    plan = ReloadPlan(removed=[uid for uid in old if uid not in new])
    for uid, settings in new.items():
        if uid not in old:
            plan.added[uid] = list(settings)
            continue
        if list(old[uid]) != list(settings):
            plan.changed[uid] = list(settings)
        known = {s.strategy_id for s in old[uid]}
        fresh = [s.strategy_id for s in settings if s.strategy_id not in known]
        if fresh:
            plan.new_strategies[uid] = fresh
    return plan


def refusals(old: Any, new: Any) -> list[str]:
    """Why ``new`` (an ``AppConfig``) cannot replace ``old`` in a running supervisor."""
    errors = []
    if Path(new.paths.runtime_dir) != Path(old.paths.runtime_dir):
        errors.append("paths.runtime_dir cannot change on reload (restart the service)")
    return errors
