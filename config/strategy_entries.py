"""The ``strategies:`` list: each entry checked, the valid ones kept with their index.

An entry is kept when its id, token and users are valid and its id is new; an entry
with errors of its own is reported and dropped, and its id remembered
(``broken_strategy_ids``) so that overrides naming it are not reported a second time.
"""

from __future__ import annotations

from typing import Any

from config.checker import ConfigChecker, both_targets
from config.schema import STRATEGY_RULES, StrategySection, describe
from config.yamlpos import Path as KeyPath

_REQUIRED = ("strategy_id", "target_token", "user_ids")
# A strategy as read: its index in ``strategies:`` and its settings
Indexed = list[tuple[int, StrategySection]]


def strategy_entries(checker: ConfigChecker, raw: Any) -> Indexed:
    """Valid strategy entries with their index (invalid ones are reported and dropped)."""
    if raw is None:
        checker.err(("strategies",), "missing: the config needs a 'strategies' list")
        return []
    if not isinstance(raw, list) or not raw:
        checker.err(
            ("strategies",), f"expected a non-empty list of strategies, got {describe(raw)}"
        )
        return []
    out: Indexed = []
    first_use: dict[str, int] = {}  # strategy id -> the index of the entry that has it
    for i, entry in enumerate(raw):
        strategy = _entry(checker, i, entry, first_use)
        if strategy is not None:
            out.append((i, strategy))
    return out


def _entry(
    checker: ConfigChecker, i: int, entry: Any, first_use: dict[str, int]
) -> StrategySection | None:
    """One entry: its settings when usable, else None (its problems reported)."""
    path: KeyPath = ("strategies", i)
    values = checker.section(entry, path, STRATEGY_RULES, required=_REQUIRED)
    sid: str | None = values.get("strategy_id")
    duplicate = _is_duplicate(checker, i, sid, first_use)
    both_targets(checker, path, entry)
    if isinstance(entry, dict) and "target_volume" not in entry and "target_points" not in entry:
        checker.err(path, "missing the target: set target_volume or target_points")
    if not duplicate and all(k in values for k in _REQUIRED):
        return StrategySection(**values)
    _remember_broken(checker, sid, duplicate, entry)
    return None


def _is_duplicate(
    checker: ConfigChecker, i: int, sid: str | None, first_use: dict[str, int]
) -> bool:
    """True (and reported) when an earlier entry has this id; else the id is recorded."""
    if sid is None:
        return False
    if sid in first_use:
        checker.err(
            ("strategies", i, "strategy_id"),
            f"duplicate strategy id {sid!r} (already used by strategies[{first_use[sid]}])",
        )
        return True
    first_use[sid] = i
    return False


def _remember_broken(checker: ConfigChecker, sid: str | None, duplicate: bool, entry: Any) -> None:
    """The id of a dropped entry, so overrides naming it are not reported again."""
    if sid is not None and not duplicate:
        checker.broken_strategy_ids.add(sid)
    elif isinstance(entry, dict) and isinstance(entry.get("strategy_id"), str | int):
        checker.broken_strategy_ids.add(str(entry["strategy_id"]))
