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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.errors import ConfigError, ConfigIssue, format_path
from config.loader import AppConfig
from config.settings import EffectiveSettings, ExchangeSettings
from config.source import read_source
from config.yamlpos import Positions, YamlSyntaxError, parse_yaml
from exchange.auth import Credentials

if TYPE_CHECKING:
    from exchange.models import TokenInfo


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


def token_problems(
    pairs: list[EffectiveSettings], tokens: list[TokenInfo], where: Located
) -> list[str]:
    """One line per config location whose token or chain the exchange does not list."""
    found: dict[str, str] = {}  # rendered location -> line (one per place in the file)
    for _pair, loc, line in pair_problems(pairs, tokens, where):
        found.setdefault(loc, line)
    return list(found.values())


def pair_problems(
    pairs: list[EffectiveSettings], tokens: list[TokenInfo], where: Located
) -> list[tuple[EffectiveSettings, str, str]]:
    """(pair, its location, the line to show) for every (strategy, user) pair whose token
    or chain the exchange does not list; ``run`` stops exactly these pairs."""
    listing = _Listing.of(tokens)
    out: list[tuple[EffectiveSettings, str, str]] = []
    for s in pairs:
        found = _auto_problems(s, listing) if s.auto else _fixed_token_problems(s, listing)
        for key, message in found:
            loc = where.setting(s.strategy_id, s.user_id, key)
            out.append((s, str(loc), where.issue(loc, message)))
    return out


@dataclass(frozen=True)
class _Listing:
    """The exchange's token list, looked up by name in any case."""

    symbols: list[str]  # as the exchange spells them
    by_name: dict[str, TokenInfo]  # SYMBOL and ALPHA_ID -> the token
    chains: dict[str, str]  # CHAIN -> the chain as the exchange spells it

    @classmethod
    def of(cls, tokens: list[TokenInfo]) -> _Listing:
        by_name = {t.symbol.upper(): t for t in tokens}
        by_name.update({t.alpha_id.upper(): t for t in tokens if t.alpha_id})
        chains = {(t.chain_name or "").upper(): t.chain_name for t in tokens if t.chain_name}
        return cls([t.symbol for t in tokens], by_name, chains)


# (the setting that is wrong, what is wrong with it)
Problem = tuple[str, str]


def _auto_problems(s: EffectiveSettings, listing: _Listing) -> list[Problem]:
    """``target_token: auto``: the token is chosen at run time, so every name in its
    ``candidates`` and ``chains`` must exist (the first unknown one of each is named)."""
    out: list[Problem] = []
    token = next((n for n in s.candidates if n.upper() not in listing.by_name), None)
    if token is not None:
        msg = f"{token} is not a token of the exchange's token list"
        out.append(("candidates", msg + _did_you_mean(token, listing.symbols)))
    chain = next((n for n in s.chains if n.upper() not in listing.chains), None)
    if chain is not None:
        msg = f"{chain} is not a chain of the exchange's token list"
        out.append(("chains", msg + _did_you_mean(chain, listing.chains)))
    return out


def _fixed_token_problems(s: EffectiveSettings, listing: _Listing) -> list[Problem]:
    """A named token: the exchange lists it, on the chain the config says."""
    token = listing.by_name.get(s.target_token.upper())
    if token is None:
        msg = f"{s.target_token} is not in the exchange's token list"
        return [("target_token", msg + _did_you_mean(s.target_token, listing.symbols))]
    chain = s.target_chain.upper()
    if chain == (token.chain_name or "").upper():
        return []
    if chain in listing.chains:
        msg = f"{token.symbol} is listed on {token.chain_name}, not on {s.target_chain}"
        return [("target_chain", msg)]
    msg = f"{s.target_chain} is not a chain of the exchange's token list"
    return [("target_chain", msg + _did_you_mean(s.target_chain, listing.chains.values()))]


async def fetch_tokens(exchange: ExchangeSettings) -> list[TokenInfo]:
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
