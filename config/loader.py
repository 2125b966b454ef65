"""Load ``trading_config.yaml`` into the typed settings the rest of alphavol reads.

Layers, lowest first: the built-in defaults of ``EffectiveSettings``, ``global_settings``
(``default_*`` keys), the strategy, then the user override, which wins. Every problem of
the file is collected (with its path and line) and raised together as one ``ConfigError``:
a service that trades real money must not start on a half-understood config.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from config.dashboard_section import dashboard_section
from config.errors import ConfigError, ConfigIssue, format_path
from config.logsetup import add_secrets
from config.schema import (
    AUTO_ONLY_KEYS,
    AUTO_TOKEN,
    EXCHANGE_RULES,
    GLOBAL_RULES,
    IDENTITY_RULES,
    LOGGING_RULES,
    OVERRIDE_RULES,
    PATHS_RULES,
    SCHEDULE_RULES,
    STRATEGY_RULES,
    TOP_LEVEL_KEYS,
    TUNABLE_RULES,
    USER_RULES,
    Rule,
    SettingsLayer,
    StrategySection,
    check_value,
    describe,
)
from config.service_sections import metrics_section, notify_section
from config.settings import (
    DashboardSettings,
    EffectiveSettings,
    ExchangeSettings,
    LoggingSettings,
    MetricsSettings,
    NotifySettings,
    PathSettings,
    ScheduleSettings,
)
from config.source import read_source
from config.store_section import StoreSettings, store_section
from config.yamlpos import Path as KeyPath
from config.yamlpos import Positions, YamlSyntaxError, parse_yaml
from exchange.proxy import ProxyUrlError, parse_proxy

__all__ = [
    "AppConfig",
    "ConfigError",
    "ConfigIssue",
    "StrategyInfo",
    "config_from_dict",
    "example_config_path",
    "load_config",
]

DEFAULT_DATA_DIR = "./var/data"
DEFAULT_RUNTIME_DIR = "./var/run"
DEFAULT_MAX_CONCURRENT_USERS = 10


class StrategyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy as written (before per-user overrides)."""

    strategy_id: str
    strategy_name: str
    enabled: bool
    target_token: str
    target_chain: str
    user_ids: list[str]


class AppConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The whole validated config. ``settings`` holds every (strategy, user) pair, also
    those of disabled strategies; ``effective()`` is what should run."""

    source: str
    exchange: ExchangeSettings
    paths: PathSettings
    schedule: ScheduleSettings
    logging: LoggingSettings
    max_concurrent_users: int
    strategies: list[StrategyInfo]
    settings: list[EffectiveSettings] = []
    # user_id -> that user's proxy URL (password included: never print it; show
    # ``exchange.proxy.shown(url)``), from ``user_overrides[].proxy``
    proxies: dict[str, str] = {}
    # ``run --strategy``: the only strategies to check and trade (None: every one)
    only: list[str] | None = None
    parallel_users: list[str] = []  # users whose strategies run side by side
    notify: NotifySettings = NotifySettings()
    metrics: MetricsSettings = MetricsSettings()
    dashboard: DashboardSettings = DashboardSettings()
    store: StoreSettings | None = None  # a pool of hosts on one PostgreSQL (issue 22)

    def parallel_for(self, user_id: str | int) -> bool:
        return str(user_id) in self.parallel_users

    def effective(self) -> list[EffectiveSettings]:
        """Every enabled (and selected) (strategy, user) pair, in config order."""
        return [s for s in self.settings if s.enabled and self.selected(s.strategy_id)]

    def selected(self, strategy_id: str) -> bool:
        """Not left out by ``run --strategy``."""
        return self.only is None or strategy_id in self.only

    def selecting(self, strategy_ids: list[str] | None) -> AppConfig:
        """This config with only these strategies to run (None: all); ids must exist."""
        return msgspec.structs.replace(self, only=list(strategy_ids) if strategy_ids else None)

    def for_user(self, user_id: str | int) -> list[EffectiveSettings]:
        uid = str(user_id)
        return [s for s in self.effective() if s.user_id == uid]

    def proxy_for(self, user_id: str | int) -> str | None:
        """The user's proxy URL (``user_overrides[].proxy``), None when it has none."""
        return self.proxies.get(str(user_id))

    def user_ids(self) -> list[str]:
        """Users of enabled strategies, in config order, each once."""
        return list(dict.fromkeys(s.user_id for s in self.effective()))


def example_config_path() -> Path:
    """The commented example config shipped inside the package."""
    return Path(str(importlib.resources.files("config") / "trading_config.yaml"))


def load_config(path: str | Path) -> AppConfig:
    """Read and validate a YAML config (``config.source`` reads it, bounded); raises
    ConfigError listing every problem."""
    shown = str(path)
    p = Path(os.path.expanduser(str(path)))
    text = read_source(p, shown)  # a regular file of at most 1 MiB, or refused unread
    try:
        data, positions, problems = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigError(
            [ConfigIssue(file=shown, path="", line=exc.line, message=exc.message)]
        ) from None
    ctx = _Ctx(shown, positions)
    for kpath, line, message in problems:
        ctx.issues.append(
            ConfigIssue(file=shown, path=format_path(kpath), line=line, message=message)
        )
    return _build(ctx, data, source=str(p.resolve()), base_dir=p.resolve().parent)


def config_from_dict(data: dict, *, source: str = "<dict>", base_dir: Path) -> AppConfig:
    """Validate an already-parsed config (tests, programmatic use); no line numbers."""
    return _build(_Ctx(source, Positions()), _plain(data), source=source, base_dir=Path(base_dir))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not isinstance(value, bool):
        return Decimal(repr(value))
    return value


class _Ctx:
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
                self.err(kpath, _unknown(key, rules, hints), at_key=True)
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
            uid, problem = check_value(item, _ID_RULE)
            if problem:
                self.err((*path, i), problem)
                ok = False
            elif uid in ids:
                self.err((*path, i), f"user id {uid} is listed twice")
                ok = False
            else:
                ids.append(uid)
        return ids if ok else None


def _unknown(key: str, rules: Mapping[str, object], hints: dict[str, str] | None) -> str:
    if hints and key in hints:
        return hints[key]
    close = difflib.get_close_matches(key, list(rules), n=1, cutoff=0.6)
    if not close and key.startswith("default_"):
        close = difflib.get_close_matches(key[len("default_") :], list(rules), n=1, cutoff=0.6)
    msg = f"unknown key {key!r}"
    return msg + (f"; did you mean {close[0]!r}?" if close else "")


def _resolve_dir(raw: str, base_dir: Path) -> str:
    p = Path(os.path.expanduser(raw))
    return str((p if p.is_absolute() else base_dir / p).resolve())


def _build(ctx: _Ctx, data: Any, *, source: str, base_dir: Path) -> AppConfig:
    if data is None:
        ctx.err((), "the config is empty; it needs at least a 'strategies' list")
        raise ConfigError(ctx.issues)
    if not isinstance(data, dict):
        ctx.err((), f"the config must be a mapping of sections, got {describe(data)}")
        raise ConfigError(ctx.issues)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            ctx.err((key,), _unknown(key, dict.fromkeys(TOP_LEVEL_KEYS), None), at_key=True)

    g = ctx.section(data.get("global_settings"), ("global_settings",), GLOBAL_RULES)
    global_layer = _global_layer(ctx, g)
    max_users = g.get("max_concurrent_users", DEFAULT_MAX_CONCURRENT_USERS)

    exchange = ExchangeSettings(**ctx.section(data.get("exchange"), ("exchange",), EXCHANGE_RULES))
    p = ctx.section(data.get("paths"), ("paths",), PATHS_RULES)
    paths = PathSettings(
        data_dir=_resolve_dir(p.get("data_dir", DEFAULT_DATA_DIR), base_dir),
        runtime_dir=_resolve_dir(p.get("runtime_dir", DEFAULT_RUNTIME_DIR), base_dir),
    )
    schedule = ScheduleSettings(**ctx.section(data.get("schedule"), ("schedule",), SCHEDULE_RULES))
    logging_ = LoggingSettings(**ctx.section(data.get("logging"), ("logging",), LOGGING_RULES))
    notify = notify_section(ctx, data.get("notify"))
    metrics = metrics_section(ctx, data.get("metrics"))
    dashboard = dashboard_section(ctx, data.get("dashboard"), base_dir)
    store = store_section(ctx, data.get("store"), base_dir)

    strategies = _strategies(ctx, data.get("strategies"))
    proxies: dict[str, str] = {}
    overrides = _overrides(ctx, data.get("user_overrides"), strategies, proxies)
    settings = _layer_all(ctx, global_layer, strategies, overrides)

    if ctx.issues:
        raise ConfigError(sorted(ctx.issues, key=lambda i: i.line or 0))
    infos = [
        StrategyInfo(
            strategy_id=s.strategy_id,
            strategy_name=s.strategy_name or s.strategy_id,
            enabled=s.enabled if s.enabled is not msgspec.UNSET else True,
            target_token=s.target_token or "",
            target_chain=_pick("target_chain", s, global_layer),
            user_ids=list(s.user_ids),
        )
        for _i, s in strategies
    ]
    parallel_default = g.get("parallel_strategies", False)
    users = dict.fromkeys(s.user_id for s in settings)
    return AppConfig(
        source=source,
        exchange=exchange,
        paths=paths,
        schedule=schedule,
        logging=logging_,
        max_concurrent_users=max_users,
        strategies=infos,
        settings=settings,
        proxies=proxies,
        parallel_users=[
            u
            for u in users
            if ctx.user_values.get(u, {}).get("parallel_strategies", parallel_default)
        ],
        notify=notify,
        metrics=metrics,
        dashboard=dashboard,
        store=store,
    )


def _pick(name: str, *layers: SettingsLayer) -> Any:
    """The first value given for ``name`` in ``layers``, else the built-in default."""
    for layer in layers:
        value = getattr(layer, name)
        if value is not msgspec.UNSET:
            return value
    return _DEFAULTS[name]


_DEFAULTS = {f.name: f.default for f in msgspec.structs.fields(EffectiveSettings)}
_ID_RULE = Rule("id")
# strategies and proxy: checked apart
_OVERRIDE_KEYS = {
    "user_id": _ID_RULE,
    "strategies": Rule("id"),
    "proxy": Rule("text"),
    **USER_RULES,
}


def _global_layer(ctx: _Ctx, g: dict[str, Any]) -> SettingsLayer:
    values: dict[str, Any] = {}
    for name in TUNABLE_RULES:
        plain, prefixed = name in g, f"default_{name}" in g
        if plain and prefixed:
            ctx.err(
                ("global_settings", name),
                f"given twice, also as 'default_{name}'; keep one",
                at_key=True,
            )
        if prefixed:
            values[name] = g[f"default_{name}"]
        elif plain:
            values[name] = g[name]
    return SettingsLayer(**values)


def _strategies(ctx: _Ctx, raw: Any) -> list[tuple[int, StrategySection]]:
    """Valid strategy entries with their index (invalid ones are reported and dropped)."""
    if raw is None:
        ctx.err(("strategies",), "missing: the config needs a 'strategies' list")
        return []
    if not isinstance(raw, list) or not raw:
        ctx.err(("strategies",), f"expected a non-empty list of strategies, got {describe(raw)}")
        return []
    out: list[tuple[int, StrategySection]] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw):
        path: KeyPath = ("strategies", i)
        values = ctx.section(
            entry, path, STRATEGY_RULES, required=("strategy_id", "target_token", "user_ids")
        )
        sid: str | None = values.get("strategy_id")
        duplicate = sid is not None and sid in seen
        if sid is not None and sid in seen:
            ctx.err(
                (*path, "strategy_id"),
                f"duplicate strategy id {sid!r} (already used by strategies[{seen[sid]}])",
            )
        elif sid is not None:
            seen[sid] = i
        if isinstance(entry, dict) and {"target_volume", "target_points"} <= set(entry):
            ctx.err(
                (*path, "target_points"), "give either target_volume or target_points, not both"
            )
        if (
            isinstance(entry, dict)
            and "target_volume" not in entry
            and "target_points" not in entry
        ):
            ctx.err(path, "missing the target: set target_volume or target_points")
        if not duplicate and all(k in values for k in ("strategy_id", "target_token", "user_ids")):
            out.append((i, StrategySection(**values)))
        elif sid is not None and not duplicate:
            ctx.broken_strategy_ids.add(sid)
        elif isinstance(entry, dict) and isinstance(entry.get("strategy_id"), str | int):
            ctx.broken_strategy_ids.add(str(entry["strategy_id"]))
    return out


def _overrides(
    ctx: _Ctx,
    raw: Any,
    strategies: list[tuple[int, StrategySection]],
    proxies: dict[str, str],
) -> dict[tuple[str, str], SettingsLayer]:
    """(strategy_id, user_id) -> that user's override layer; each user's ``proxy`` goes
    into ``proxies``."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        ctx.err(("user_overrides",), f"expected a list of user overrides, got {describe(raw)}")
        return {}
    by_id = {s.strategy_id: s for _i, s in strategies}
    all_users = {u for s in by_id.values() for u in s.user_ids}
    no_override = {
        k: f"{k!r} belongs to the strategy and cannot be overridden per user"
        for k in IDENTITY_RULES
    }
    out: dict[tuple[str, str], SettingsLayer] = {}
    seen_users: dict[str, int] = {}
    for i, entry in enumerate(raw):
        path: KeyPath = ("user_overrides", i)
        if not isinstance(entry, dict):
            ctx.err(path, f"expected a mapping with user_id and strategies, got {describe(entry)}")
            continue
        for key in entry:
            if key not in _OVERRIDE_KEYS:
                ctx.err((*path, key), _unknown(key, _OVERRIDE_KEYS, None), at_key=True)
        if "user_id" not in entry:
            ctx.err(path, "missing required key 'user_id'")
            continue
        uid, problem = check_value(entry["user_id"], _OVERRIDE_KEYS["user_id"])
        if problem:
            ctx.err((*path, "user_id"), problem)
            continue
        if uid in seen_users:
            ctx.err(
                (*path, "user_id"),
                f"user {uid} already has an override at user_overrides[{seen_users[uid]}];"
                " merge the two",
            )
            continue
        seen_users[uid] = i
        if by_id and uid not in all_users and not ctx.broken_strategy_ids:
            ctx.err((*path, "user_id"), f"user {uid} is not in any strategy's user_ids")
            continue
        if entry.get("proxy") is not None:
            _proxy(ctx, entry["proxy"], (*path, "proxy"), uid, proxies)
        user_level = {k: v for k, v in entry.items() if k in USER_RULES}
        ctx.user_values[uid] = ctx.section(user_level, path, USER_RULES)
        per_strategy = entry.get("strategies")
        spath: KeyPath = (*path, "strategies")
        if per_strategy is None:
            continue
        if not isinstance(per_strategy, dict):
            ctx.err(
                spath,
                f"expected a mapping of strategy id -> settings, got {describe(per_strategy)}",
            )
            continue
        for sid, settings in per_strategy.items():
            kpath = (*spath, sid)
            strategy = by_id.get(sid)
            if strategy is None and sid in ctx.broken_strategy_ids:
                continue  # that strategy's own errors are reported already
            if strategy is None:
                close = difflib.get_close_matches(sid, list(by_id), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                ctx.err(kpath, f"no strategy with id {sid!r}{hint}", at_key=True)
                continue
            if uid not in strategy.user_ids:
                ctx.err(
                    kpath, f"user {uid} is not in the user_ids of strategy {sid!r}", at_key=True
                )
                continue
            values = ctx.section(settings, kpath, OVERRIDE_RULES, hints=no_override)
            if isinstance(settings, dict) and {"target_volume", "target_points"} <= set(settings):
                ctx.err(
                    (*kpath, "target_points"),
                    "give either target_volume or target_points, not both",
                )
            out[(sid, uid)] = SettingsLayer(**values)
    return out


def _is_auto(token: str) -> bool:
    return token.lower() == AUTO_TOKEN


def _proxy(ctx: _Ctx, raw: Any, path: KeyPath, uid: str, proxies: dict[str, str]) -> None:
    """A user's proxy: http:// or socks5:// with a host and a port. Messages never repeat
    the value (it may hold a password)."""
    if not isinstance(raw, str):
        ctx.err(path, f"expected a proxy URL (socks5://user:pass@host:port), got {describe(raw)}")
        return
    try:
        proxy = parse_proxy(raw)
    except ProxyUrlError as exc:
        ctx.err(path, f"proxy of user {uid}: {exc}")
        return
    add_secrets(proxy.secret_values())
    proxies[uid] = proxy.url


def _layer_all(
    ctx: _Ctx,
    global_layer: SettingsLayer,
    strategies: list[tuple[int, StrategySection]],
    overrides: dict[tuple[str, str], SettingsLayer],
) -> list[EffectiveSettings]:
    out: list[EffectiveSettings] = []
    misplaced: set[tuple[int, str]] = set()
    for i, strategy in strategies:
        for uid in strategy.user_ids:
            merged: dict[str, Any] = {}
            layers = [global_layer, strategy, overrides.get((strategy.strategy_id, uid))]
            for layer in layers:
                if layer is None:
                    continue
                given = layer.given()
                # A layer that names a target replaces the other kind of target below it.
                if "target_points" in given:
                    merged.pop("target_volume", None)
                    merged["target_points"] = given.pop("target_points")
                    merged["target_volume"] = Decimal(2) ** merged["target_points"]
                elif "target_volume" in given:
                    merged["target_points"] = None
                merged.update(given)
            if "target_volume" not in merged:
                continue  # reported by _strategies
            token = merged.get("target_token", "")
            for key in AUTO_ONLY_KEYS:
                if key in strategy.given() and not _is_auto(token) and (i, key) not in misplaced:
                    misplaced.add((i, key))
                    ctx.err(
                        ("strategies", i, key),
                        f"applies only with target_token: auto (user {uid} trades {token})",
                        at_key=True,
                    )
            out.append(
                EffectiveSettings(
                    strategy_id=strategy.strategy_id,
                    strategy_name=(
                        strategy.strategy_name
                        if strategy.strategy_name is not msgspec.UNSET
                        else strategy.strategy_id
                    ),
                    user_id=uid,
                    **merged,
                )
            )
    return out
