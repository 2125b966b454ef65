"""The market a strategy trades in its next batch, read from the exchange at each batch
boundary (never in the middle of a round trip).

* a fixed ``target_token``: the token list says whether it still trades (a token in BREAK
  or DELISTED fails that strategy at the boundary, with nothing open) and its mulPoint;
* ``target_token: auto``: the token list, the exchange info, and the book and candles of
  the tokens that could be the cheapest, handed to ``userproc.chooser``. When no token
  qualifies only because of the market (spread, volatility, an empty book) it waits and
  looks again; when none can (nothing trades, the filters exclude everything) the strategy
  fails, saying why for each token.

Either way it estimates what a round trip costs per credited USDT (``chooser.Estimate``),
which the balance floor uses and ``status`` shows for ``auto``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import structlog

from config.settings import EffectiveSettings
from exchange.errors import UnknownToken
from exchange.market_models import Depth, Kline
from exchange.models import SymbolFilters
from protocol import messages as m
from userproc.chooser import (
    FEE_PER_SIDE,
    Choice,
    Estimate,
    Listed,
    Prefs,
    choose,
    estimate,
    not_trading,
)
from userproc.errors import BadReplies, ExchangeDown, StrategyFailed
from userproc.lifecycle import Lifecycle, Phase
from userproc.session import Market, Session

log = structlog.get_logger(__name__)
ONE = Decimal(1)
DEPTH_LEVELS = 5
LOOSE = Decimal(10**6)  # a fixed token is traded whatever its spread (the guard waits)


@dataclass
class Picked:
    market: Market
    mul_point: Decimal
    estimate: Estimate | None  # auto: the chosen token's; fixed: read on demand
    choice: Choice | None = None  # auto only
    listed: Listed | None = None  # fixed only


class MarketPicker:
    def __init__(self, session: Session, life: Lifecycle) -> None:
        self.s = session
        self.life = life
        self.mul_points: dict[str, Decimal] = {}  # plain symbol -> today's mulPoint
        self.delisted: set[str] = set()  # plain symbols that can no longer be sold
        self._filters: dict[str, SymbolFilters] = {}
        self._prefs = Prefs()

    # ------------------------------------------------------------------ reads
    async def _fetch(self, item: Listed) -> tuple[Depth, list[Kline]]:
        """A token's book and recent one-minute candles; an empty book if unreadable (the
        chooser then skips the token: one broken token must not stop the strategy)."""
        try:
            depth = await self.s.call("depth", self.s.client.depth, item.token.pair, DEPTH_LEVELS)
            klines = await self.s.call(
                "klines", self.s.client.klines, item.token.pair, "1m", self._prefs.bars() + 1
            )
        except (ExchangeDown, BadReplies) as exc:
            log.warning("market_read_failed", token=item.symbol, error=exc.reason)
            return Depth(symbol=item.token.pair), []
        return depth, klines

    async def _listed(self) -> list[Listed]:
        tokens = await self.s.token_list()
        info = await self.s.call("exchange_info", self.s.client.exchange_info)
        by_pair = {f.symbol: f for f in info.symbols}
        self.mul_points = {t.symbol: t.mul_point or ONE for t in tokens}
        out = [Listed(t, by_pair.get(t.pair)) for t in tokens]
        self.delisted = {x.symbol for x in out if x.token.offsell or _status(x) == "DELISTED"}
        return out

    # ------------------------------------------------------------------ picking
    async def pick(self, st: EffectiveSettings, current: Market | None) -> Picked:
        prefs = self._prefs = Prefs.of(st, self.s.tuning.volatility_window_seconds)
        if st.auto:
            return await self._auto(st, prefs, current)
        return await self._fixed(st, prefs)

    async def _fixed(self, st: EffectiveSettings, prefs: Prefs) -> Picked:
        try:
            token = await self.s.token(st.target_token)
            filters = self._filters.get(token.pair)
            if filters is None:
                info = await self.s.call("exchange_info", self.s.client.exchange_info)
                filters = self._filters[token.pair] = info.get(token.pair)
        except (UnknownToken, KeyError) as exc:  # a typo in the config: restarting won't help
            raise StrategyFailed(f"target_token {st.target_token!r}: {exc}") from None
        item = Listed(token, filters)
        self.mul_points[token.symbol] = item.mul_point
        why = await self._why_not_trading(item)
        if why:
            raise StrategyFailed(
                f"{token.symbol} is {why}: not trading it (nothing is open); choose another"
                " target_token, or target_token: auto"
            )
        return Picked(_market(item), item.mul_point, None, listed=item)

    async def _auto(self, st: EffectiveSettings, prefs: Prefs, current: Market | None) -> Picked:
        while True:
            listed = await self._listed()
            choice = await choose(
                listed, self._fetch, prefs, current=current.token if current else None
            )
            best = choice.best
            if best is not None:
                self._report(st, choice, current)
                return Picked(_market(best.listed), best.mul_point, best, choice)
            why = choice.why_none()
            if not any(sk.transient for sk in choice.skipped):
                raise StrategyFailed(why)
            log.warning("no_token_to_trade_yet", strategy_id=st.strategy_id, reason=why)
            self.life.to(Phase.WAITING_PRICE, why[:200], strategy=st.strategy_id)
            await self.life.sleep(self.s.tuning.volatility_wait_seconds, st.strategy_id)

    def _report(self, st: EffectiveSettings, choice: Choice, current: Market | None) -> None:
        """The log line and the supervisor's ``TokenChosen`` (``status`` shows it)."""
        best = choice.best
        assert best is not None
        previous = current.token if current is not None else None
        self.s.tell(
            m.TokenChosen(
                user_id=self.s.user_id,
                strategy_id=st.strategy_id,
                token=best.symbol,
                mul_point=best.mul_point,
                cost_per_credit=best.cost_per_credit,
                previous=previous if previous != best.symbol else None,
            ),
            "token_chosen",
            cost_per_credit_bp=f"{best.cost_per_credit * 10000:.4f}",
            kept=choice.kept,
            considered={e.symbol: f"{e.cost_per_credit * 10000:.4f}" for e in choice.considered},
            skipped=[str(sk) for sk in choice.skipped[:12]],
        )

    async def cost_per_credit(self, picked: Picked) -> Decimal:
        """Expected USDT lost per credited USDT on the picked token (a fixed token's book
        is read now, once per pick; fees alone when it has no book)."""
        if picked.estimate is None and picked.listed is not None:
            loose = Prefs(
                max_moved_percentage=LOOSE,
                guard_window_seconds=self._prefs.guard_window_seconds,
                basis=self._prefs.basis,
            )
            est = estimate(picked.listed, *await self._fetch(picked.listed), loose)
            if isinstance(est, Estimate):
                picked.estimate = est
                log.info("token_cost", token=est.symbol, cost=est.describe())
        if picked.estimate is not None:
            return picked.estimate.cost_per_credit
        mul = picked.mul_point if self._prefs.basis == "reported" else ONE
        return 2 * FEE_PER_SIDE / mul

    # ------------------------------------------------------------------ mid-batch
    async def stopped_trading(self, market: Market) -> str | None:
        """Why ``market``'s token no longer takes buys (asked after a refused order)."""
        token = await self.s.token(market.token, max_age=0)
        return await self._why_not_trading(Listed(token, market.filters))

    async def _why_not_trading(self, item: Listed) -> str | None:
        """``chooser.not_trading`` with fresh flags: the token list says whether the token
        is offline; only then is the exchange info asked again, for its status (the one
        we hold may be old)."""
        t = item.token
        if not (t.offline or t.offsell):
            return not_trading(item)
        info = await self.s.call("exchange_info", self.s.client.exchange_info)
        fresh = Listed(t, next((f for f in info.symbols if f.symbol == t.pair), None))
        if t.offsell or _status(fresh) == "DELISTED":
            self.delisted.add(t.symbol)
        return not_trading(fresh) or ("delisted" if t.offsell else "not trading (offline)")


def _status(item: Listed) -> str:
    return (item.filters.status or "TRADING").upper() if item.filters else ""


def _market(item: Listed) -> Market:
    assert item.filters is not None  # the chooser only picks listed symbols
    t = item.token
    return Market(token=t.symbol, base_asset=t.alpha_id, symbol=t.pair, filters=item.filters)
