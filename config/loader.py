"""Load ``trading_config.yaml`` into the typed settings the rest of alphavol reads.

Layers, lowest first: the built-in defaults of ``EffectiveSettings``, ``global_settings``
(``default_*`` keys), the strategy, then the user override, which wins. Every problem of
the file is collected (with its path and line) and raised together as one ``ConfigError``:
a service that trades real money must not start on a half-understood config.
"""

from __future__ import annotations

import importlib.resources
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from config.checker import ConfigChecker, unknown_key
from config.dashboard_section import dashboard_section
from config.errors import ConfigError, ConfigIssue, format_path
from config.schema import (
    AUTO_ONLY_KEYS,
    AUTO_TOKEN,
    EXCHANGE_RULES,
    GLOBAL_RULES,
    LOGGING_RULES,
    PATHS_RULES,
    SCHEDULE_RULES,
    TOP_LEVEL_KEYS,
    TUNABLE_RULES,
    SettingsLayer,
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
from config.strategy_entries import Indexed, strategy_entries
from config.user_overrides import Overrides, user_overrides
from config.yamlpos import Positions, YamlSyntaxError, parse_yaml

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
    checker = ConfigChecker(shown, positions)
    for kpath, line, message in problems:
        checker.issues.append(
            ConfigIssue(file=shown, path=format_path(kpath), line=line, message=message)
        )
    return _build(checker, data, source=str(p.resolve()), base_dir=p.resolve().parent)


def config_from_dict(data: dict, *, source: str = "<dict>", base_dir: Path) -> AppConfig:
    """Validate an already-parsed config (tests, programmatic use); no line numbers."""
    return _build(
        ConfigChecker(source, Positions()), _plain(data), source=source, base_dir=Path(base_dir)
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not isinstance(value, bool):
        return Decimal(repr(value))
    return value


def _resolve_dir(raw: str, base_dir: Path) -> str:
    p = Path(os.path.expanduser(raw))
    return str((p if p.is_absolute() else base_dir / p).resolve())


def _build(checker: ConfigChecker, data: Any, *, source: str, base_dir: Path) -> AppConfig:
    if data is None:
        checker.err((), "the config is empty; it needs at least a 'strategies' list")
        raise ConfigError(checker.issues)
    if not isinstance(data, dict):
        checker.err((), f"the config must be a mapping of sections, got {describe(data)}")
        raise ConfigError(checker.issues)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            checker.err((key,), unknown_key(key, dict.fromkeys(TOP_LEVEL_KEYS), None), at_key=True)

    g = checker.section(data.get("global_settings"), ("global_settings",), GLOBAL_RULES)
    global_layer = _global_layer(checker, g)
    max_users = g.get("max_concurrent_users", DEFAULT_MAX_CONCURRENT_USERS)

    exchange = ExchangeSettings(
        **checker.section(data.get("exchange"), ("exchange",), EXCHANGE_RULES)
    )
    p = checker.section(data.get("paths"), ("paths",), PATHS_RULES)
    paths = PathSettings(
        data_dir=_resolve_dir(p.get("data_dir", DEFAULT_DATA_DIR), base_dir),
        runtime_dir=_resolve_dir(p.get("runtime_dir", DEFAULT_RUNTIME_DIR), base_dir),
    )
    schedule = ScheduleSettings(
        **checker.section(data.get("schedule"), ("schedule",), SCHEDULE_RULES)
    )
    logging_ = LoggingSettings(**checker.section(data.get("logging"), ("logging",), LOGGING_RULES))
    notify = notify_section(checker, data.get("notify"))
    metrics = metrics_section(checker, data.get("metrics"))
    dashboard = dashboard_section(checker, data.get("dashboard"), base_dir)
    store = store_section(checker, data.get("store"), base_dir)

    strategies = strategy_entries(checker, data.get("strategies"))
    proxies: dict[str, str] = {}
    overrides = user_overrides(checker, data.get("user_overrides"), strategies, proxies)
    settings = _layer_all(checker, global_layer, strategies, overrides)

    if checker.issues:
        raise ConfigError(sorted(checker.issues, key=lambda i: i.line or 0))
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
            if checker.user_values.get(u, {}).get("parallel_strategies", parallel_default)
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


def _global_layer(checker: ConfigChecker, g: dict[str, Any]) -> SettingsLayer:
    values: dict[str, Any] = {}
    for name in TUNABLE_RULES:
        plain, prefixed = name in g, f"default_{name}" in g
        if plain and prefixed:
            checker.err(
                ("global_settings", name),
                f"given twice, also as 'default_{name}'; keep one",
                at_key=True,
            )
        if prefixed:
            values[name] = g[f"default_{name}"]
        elif plain:
            values[name] = g[name]
    return SettingsLayer(**values)


def _is_auto(token: str) -> bool:
    return token.lower() == AUTO_TOKEN


def _layer_all(
    checker: ConfigChecker,
    global_layer: SettingsLayer,
    strategies: Indexed,
    overrides: Overrides,
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
                    checker.err(
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
