"""The one object that checks a config's sections and collects every issue found.

``load_config`` reports every problem of the file at once, each with its path and line.
``ConfigChecker`` is how the section readers (``loader``, ``strategy_entries``,
``user_overrides``, ``service_sections`` ...) report one: ``err(path, message)`` places it at
the line of the value (or key) at ``path``; ``section(...)`` checks a whole mapping against
its table of ``Rule``s and returns only the valid keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from config.errors import ConfigIssue, format_path
from config.schema import Rule, check_value, describe
from config.yamlpos import Path as KeyPath
from config.yamlpos import Positions

ID_RULE = Rule("id")


class ConfigChecker:
    """Collects issues, knowing the file and where each path sits in it."""

    def __init__(self, file: str, positions: Positions) -> None:
        self.file = file
        self.positions = positions
        self.issues: list[ConfigIssue] = []
        # ids of strategies with errors of their own: overrides naming them are not
        # reported again as "no such strategy"
        self.broken_strategy_ids: set[str] = set()
        self.user_values: dict[str, dict[str, Any]] = {}  # user id -> its USER_RULES keys

    def err(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        line = self.positions.key_line(path) if at_key else self.positions.value_line(path)
        self.issues.append(
            ConfigIssue(file=self.file, path=format_path(path), line=line, message=message)
        )

    def section(
        self,
        value: Any,
        path: KeyPath,
        rules: dict[str, Rule],
        *,
        required: tuple[str, ...] = (),
        hints: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Check one mapping against ``rules``; returns the keys whose values are valid."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping of settings, got {describe(value)}")
            return {}
        out: dict[str, Any] = {}
        for key, raw in value.items():
            kpath = (*path, key)
            rule = rules.get(key)
            if rule is None:
                self.err(kpath, unknown_key(key, rules, hints), at_key=True)
                continue
            if rule.kind == "ids" and isinstance(raw, list) and raw:
                converted = self._ids(raw, kpath)
                if converted is not None:
                    out[key] = converted
                continue
            converted, problem = check_value(raw, rule)
            if problem:
                self.err(kpath, problem)
            else:
                out[key] = converted
        for key in required:
            if key not in value:
                self.err(path, f"missing required key {key!r}")
        return out

    def _ids(self, raw: list[Any], path: KeyPath) -> list[str] | None:
        """User ids, each checked where it is written (``user_ids[2]``)."""
        ids: list[str] = []
        ok = True
        for i, item in enumerate(raw):
            uid, problem = check_value(item, ID_RULE)
            if problem:
                self.err((*path, i), problem)
                ok = False
            elif uid in ids:
                self.err((*path, i), f"user id {uid} is listed twice")
                ok = False
            else:
                ids.append(uid)
        return ids if ok else None


def unknown_key(key: str, rules: Mapping[str, object], hints: dict[str, str] | None) -> str:
    """What to say of a key that ``rules`` does not know: its hint, or the closest known key."""
    if hints and key in hints:
        return hints[key]
    close = difflib.get_close_matches(key, list(rules), n=1, cutoff=0.6)
    if not close and key.startswith("default_"):
        close = difflib.get_close_matches(key[len("default_") :], list(rules), n=1, cutoff=0.6)
    msg = f"unknown key {key!r}"
    return msg + (f"; did you mean {close[0]!r}?" if close else "")


def both_targets(checker: ConfigChecker, path: KeyPath, entry: Any) -> None:
    """A strategy or a user's override of it names one target, never both."""
    if isinstance(entry, dict) and {"target_volume", "target_points"} <= set(entry):
        checker.err(
            (*path, "target_points"), "give either target_volume or target_points, not both"
        )
