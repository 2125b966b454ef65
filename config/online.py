"""`alphavol check --online` and `users check --online`: what only the exchange can tell.

* every strategy's ``target_token`` and ``target_chain`` (after per-user overrides) against
  the exchange's token list, with a did-you-mean (``KOGEE`` -> ``KOGE``, ``BCS`` -> ``BSC``);
  for ``target_token: auto``, its ``candidates`` and ``chains`` instead;
* every stored session, one user-volume call per user, concurrently.

Each problem names the config line where the value is written, in the loader's format
(``file:line: path: message``), so ``check`` reads the same offline and online.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Iterable
from typing import Any

from config.errors import ConfigError, ConfigIssue, format_path
from config.loader import AppConfig
from config.settings import EffectiveSettings, ExchangeSettings
from config.source import read_source
from config.yamlpos import Positions, YamlSyntaxError, parse_yaml
from exchange.auth import Credentials


class Located:
    """Finds where a (strategy, user) pair's value is written in the config file."""

    def __init__(self, cfg: AppConfig, shown: str) -> None:
        self.shown = shown
        try:
            data, self.positions, _ = parse_yaml(read_source(cfg.source))
        except (ConfigError, YamlSyntaxError):  # cannot happen after load_config; be lenient
            data, self.positions = {}, Positions()
        self.data = data if isinstance(data, dict) else {}

    def _strategy_index(self, sid: str) -> int | None:
        for i, s in enumerate(self.data.get("strategies") or []):
            if isinstance(s, dict) and str(s.get("strategy_id")) == sid:
                return i
        return None

    def _override(self, sid: str, uid: str) -> tuple[tuple, dict] | None:
        for i, o in enumerate(self.data.get("user_overrides") or []):
            if isinstance(o, dict) and str(o.get("user_id")) == uid:
                per = (o.get("strategies") or {}).get(sid)
                if isinstance(per, dict):
                    return ("user_overrides", i, "strategies", sid), per
        return None

    def setting(self, sid: str, uid: str, key: str) -> tuple[str, int | None]:
        """(dotted path, line) of the layer that sets ``key`` for this pair."""
        candidates: list[tuple[tuple, dict]] = []
        override = self._override(sid, uid)
        if override:
            candidates.append(override)
        i = self._strategy_index(sid)
        if i is not None:
            candidates.append((("strategies", i), self.data["strategies"][i]))
        g = self.data.get("global_settings")
        if isinstance(g, dict):
            candidates.append((("global_settings",), g))
        for prefix, section in candidates:
            for name in (key, f"default_{key}") if prefix == ("global_settings",) else (key,):
                if name in section:
                    path = (*prefix, name)
                    return format_path(path), self.positions.value_line(path)
        path = ("strategies", i) if i is not None else ()
        return f"{format_path(path)} (default {key})", self.positions.value_line(path)

    def user(self, uid: str) -> tuple[str, int | None]:
        """(path, line) of the first ``user_ids`` entry naming this user."""
        for i, s in enumerate(self.data.get("strategies") or []):
            ids = s.get("user_ids") if isinstance(s, dict) else None
            for j, u in enumerate(ids or []):
                if str(u) == uid:
                    path = ("strategies", i, "user_ids", j)
                    return format_path(path), self.positions.value_line(path)
        return f"user {uid}", None

    def issue(self, where: tuple[str, int | None], message: str) -> str:
        return str(ConfigIssue(file=self.shown, path=where[0], line=where[1], message=message))


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.upper(), sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def token_problems(pairs: list[EffectiveSettings], tokens: list[Any], where: Located) -> list[str]:
    """One line per config location whose token or chain the exchange does not list."""
    found: dict[str, str] = {}  # rendered location -> line (one per place in the file)
    for _pair, loc, line in pair_problems(pairs, tokens, where):
        found.setdefault(loc, line)
    return list(found.values())


def pair_problems(
    pairs: list[EffectiveSettings], tokens: list[Any], where: Located
) -> list[tuple[EffectiveSettings, str, str]]:
    """(pair, its location, the line to show) for every (strategy, user) pair whose token
    or chain the exchange does not list; ``run`` stops exactly these pairs."""
    by_symbol = {t.symbol.upper(): t for t in tokens}
    by_symbol.update({t.alpha_id.upper(): t for t in tokens if t.alpha_id})
    chains = {(t.chain_name or "").upper(): t.chain_name for t in tokens if t.chain_name}
    out: list[tuple[EffectiveSettings, str, str]] = []

    def add(s: EffectiveSettings, key: str, msg: str) -> None:
        loc = where.setting(s.strategy_id, s.user_id, key)
        out.append((s, str(loc), where.issue(loc, msg)))

    for s in pairs:
        if s.auto:  # the token is chosen at run time: its candidates and chains must exist
            for key, names, known in (
                ("candidates", s.candidates, by_symbol),
                ("chains", s.chains, chains),
            ):
                missing = [n for n in names if n.upper() not in known]
                if missing:
                    what = "token" if key == "candidates" else "chain"
                    pool = (t.symbol for t in tokens) if key == "candidates" else chains
                    msg = f"{missing[0]} is not a {what} of the exchange's token list"
                    add(s, key, msg + _did_you_mean(missing[0], pool))
            continue
        token = by_symbol.get(s.target_token.upper())
        if token is None:
            msg = f"{s.target_token} is not in the exchange's token list" + _did_you_mean(
                s.target_token, (t.symbol for t in tokens)
            )
            add(s, "target_token", msg)
            continue
        chain = s.target_chain.upper()
        if chain == (token.chain_name or "").upper():
            continue
        if chain in chains:
            msg = f"{token.symbol} is listed on {token.chain_name}, not on {s.target_chain}"
        else:
            msg = f"{s.target_chain} is not a chain of the exchange's token list" + _did_you_mean(
                s.target_chain, chains.values()
            )
        add(s, "target_chain", msg)
    return out


async def fetch_tokens(exchange: ExchangeSettings) -> list[Any]:
    from exchange.client import AlphaClient

    async with AlphaClient(
        base_url=exchange.base_url,
        request_timeout=exchange.request_timeout_seconds,
        max_get_retries=1,
    ) as client:
        return await client.token_list()


async def probe_sessions(
    exchange: ExchangeSettings, users: dict[str, Credentials]
) -> dict[str, tuple[bool, str]]:
    """One user-volume call per user, concurrently: (alive, what to say)."""
    from exchange.client import AlphaClient
    from exchange.errors import ProxyFailed, RiskChallenge, SessionExpired
    from exchange.proxy import shown

    async def one(uid: str, creds: Credentials) -> tuple[bool, str]:
        try:
            async with AlphaClient(
                base_url=exchange.base_url,
                credentials=creds,
                request_timeout=exchange.request_timeout_seconds,
                max_get_retries=1,
            ) as client:
                await client.user_volume()
        except SessionExpired:
            return False, (
                "expired: log in again in the browser, copy a request as cURL and run"
                f" `alphavol users add {uid} --curl FILE`"
            )
        except RiskChallenge:
            return False, "blocked by a risk challenge: verify the account in the browser"
        except ProxyFailed as exc:  # names the proxy, password masked
            return False, f"not reached: {exc.message} (user_overrides[].proxy)"
        except Exception as exc:  # report it, never crash with a traceback
            return False, f"unknown: {type(exc).__name__}: {exc}"
        return True, f"alive (via {shown(creds.proxy)})" if creds.proxy else "alive"

    results = await asyncio.gather(*(one(u, c) for u, c in users.items()))
    return dict(zip(users, results, strict=True))


async def online_problems(
    cfg: AppConfig, sessions: dict[str, Credentials], where: Located
) -> tuple[list[str], list[str]]:
    """(problems, alive user ids): tokens and chains of every pair, and every session."""
    problems: list[str] = []
    tokens_task = asyncio.ensure_future(fetch_tokens(cfg.exchange))
    alive = await probe_sessions(cfg.exchange, sessions)
    try:
        tokens = await tokens_task
    except Exception as exc:
        problems.append(
            f"cannot read the token list from {cfg.exchange.base_url}: {type(exc).__name__}:"
            f" {exc} (exchange.base_url)"
        )
    else:
        problems.extend(token_problems(cfg.effective(), tokens, where))
    for uid, (ok, text) in alive.items():
        if not ok:
            problems.append(where.issue(where.user(uid), f"user {uid}: session {text}"))
    return problems, [u for u, (ok, _t) in alive.items() if ok]
