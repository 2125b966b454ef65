"""The ``user_overrides:`` list: per user, its proxy, its own settings, and its changes to
the strategies it trades.

An entry names one ``user_id`` (each user at most once, and only a user some strategy
lists) and may give ``proxy``, the ``USER_RULES`` keys and ``strategies: {id: settings}``,
where each id is a strategy that lists this user and the settings are any
``OVERRIDE_RULES`` key (a strategy's identity is not overridable).
"""

from __future__ import annotations

import difflib
from typing import Any

from config.checker import ID_RULE, ConfigChecker, both_targets, unknown_key
from config.logsetup import add_secrets
from config.schema import (
    IDENTITY_RULES,
    OVERRIDE_RULES,
    USER_RULES,
    Rule,
    SettingsLayer,
    StrategySection,
    check_value,
    describe,
)
from config.strategy_entries import Indexed
from config.yamlpos import Path as KeyPath
from exchange.proxy import ProxyUrlError, parse_proxy

# the keys of an entry (strategies and proxy: checked apart)
_ENTRY_KEYS = {
    "user_id": ID_RULE,
    "strategies": Rule("id"),
    "proxy": Rule("text"),
    **USER_RULES,
}
_NOT_OVERRIDABLE = {
    k: f"{k!r} belongs to the strategy and cannot be overridden per user" for k in IDENTITY_RULES
}
# (strategy_id, user_id) -> that user's override layer of that strategy
Overrides = dict[tuple[str, str], SettingsLayer]


def user_overrides(
    checker: ConfigChecker, raw: Any, strategies: Indexed, proxies: dict[str, str]
) -> Overrides:
    """(strategy_id, user_id) -> that user's override layer; each user's ``proxy`` goes
    into ``proxies``, its ``USER_RULES`` keys into ``checker.user_values``."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        checker.err(("user_overrides",), f"expected a list of user overrides, got {describe(raw)}")
        return {}
    by_id = {s.strategy_id: s for _i, s in strategies}
    listed = {u for s in by_id.values() for u in s.user_ids}
    out: Overrides = {}
    first_entry: dict[str, int] = {}  # user id -> the index of its entry
    for i, entry in enumerate(raw):
        path: KeyPath = ("user_overrides", i)
        uid = _entry_user(checker, i, entry, first_entry, listed)
        if uid is None:
            continue
        if entry.get("proxy") is not None:
            _proxy(checker, entry["proxy"], (*path, "proxy"), uid, proxies)
        user_level = {k: v for k, v in entry.items() if k in USER_RULES}
        checker.user_values[uid] = checker.section(user_level, path, USER_RULES)
        out.update(_strategy_changes(checker, path, entry.get("strategies"), uid, by_id))
    return out


def _entry_user(
    checker: ConfigChecker,
    i: int,
    entry: Any,
    first_entry: dict[str, int],
    listed: set[str],
) -> str | None:
    """The user an entry is for; None (reported) when the entry cannot be used."""
    path: KeyPath = ("user_overrides", i)
    if not isinstance(entry, dict):
        checker.err(path, f"expected a mapping with user_id and strategies, got {describe(entry)}")
        return None
    for key in entry:
        if key not in _ENTRY_KEYS:
            checker.err((*path, key), unknown_key(key, _ENTRY_KEYS, None), at_key=True)
    if "user_id" not in entry:
        checker.err(path, "missing required key 'user_id'")
        return None
    uid, problem = check_value(entry["user_id"], ID_RULE)
    if problem:
        checker.err((*path, "user_id"), problem)
        return None
    if uid in first_entry:
        checker.err(
            (*path, "user_id"),
            f"user {uid} already has an override at user_overrides[{first_entry[uid]}];"
            " merge the two",
        )
        return None
    first_entry[uid] = i
    # every valid strategy lists at least one user: no users listed means no valid strategy
    if listed and uid not in listed and not checker.broken_strategy_ids:
        checker.err((*path, "user_id"), f"user {uid} is not in any strategy's user_ids")
        return None
    return str(uid)


def _strategy_changes(
    checker: ConfigChecker,
    path: KeyPath,
    per_strategy: Any,
    uid: str,
    by_id: dict[str, StrategySection],
) -> Overrides:
    """The entry's ``strategies:`` mapping: this user's layer of each strategy it names."""
    spath: KeyPath = (*path, "strategies")
    if per_strategy is None:
        return {}
    if not isinstance(per_strategy, dict):
        checker.err(
            spath, f"expected a mapping of strategy id -> settings, got {describe(per_strategy)}"
        )
        return {}
    out: Overrides = {}
    for sid, settings in per_strategy.items():
        kpath = (*spath, sid)
        if not _overridable(checker, kpath, sid, uid, by_id):
            continue
        values = checker.section(settings, kpath, OVERRIDE_RULES, hints=_NOT_OVERRIDABLE)
        both_targets(checker, kpath, settings)
        out[(sid, uid)] = SettingsLayer(**values)
    return out


def _overridable(
    checker: ConfigChecker, kpath: KeyPath, sid: str, uid: str, by_id: dict[str, StrategySection]
) -> bool:
    """The strategy exists and lists this user (else reported, unless the strategy's own
    errors are reported already)."""
    strategy = by_id.get(sid)
    if strategy is None and sid in checker.broken_strategy_ids:
        return False
    if strategy is None:
        close = difflib.get_close_matches(sid, list(by_id), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        checker.err(kpath, f"no strategy with id {sid!r}{hint}", at_key=True)
        return False
    if uid not in strategy.user_ids:
        checker.err(kpath, f"user {uid} is not in the user_ids of strategy {sid!r}", at_key=True)
        return False
    return True


def _proxy(
    checker: ConfigChecker, raw: Any, path: KeyPath, uid: str, proxies: dict[str, str]
) -> None:
    """A user's proxy: http:// or socks5:// with a host and a port. Messages never repeat
    the value (it may hold a password)."""
    if not isinstance(raw, str):
        checker.err(
            path, f"expected a proxy URL (socks5://user:pass@host:port), got {describe(raw)}"
        )
        return
    try:
        proxy = parse_proxy(raw)
    except ProxyUrlError as exc:
        checker.err(path, f"proxy of user {uid}: {exc}")
        return
    add_secrets(proxy.secret_values())
    proxies[uid] = proxy.url
