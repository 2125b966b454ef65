"""The batch loop of one user (seed 000, with DESIGN.md's correction), strategy after
strategy:

  read today's volume (in the strategy's basis) -> done if at target -> plan a batch ->
  run its round trips (each sized just before it is placed) -> let the exchange's figure
  settle -> read again -> learn the credit per trade -> plan again ... until done.

Between round trips it waits ``trade_interval_seconds`` (waking at once on a stop). While
the user stream is down no new order is placed. The volatility guard and the daily cost
cap are checked before every buy.

At each batch boundary (``_before_batch``) the market is resolved again
(``userproc.markets``): ``target_token: auto`` may switch token there, never inside a round
trip, with the credit learnt per token; and the balance floor (``min_balance_usdt``) cuts
the batch to what keeps the day's end above it. A buy refused because its token stopped
trading ends the batch early.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import structlog

from config.settings import EffectiveSettings
from exchange.errors import UnknownToken
from protocol import messages as m
from userproc.balance import balance_allows
from userproc.errors import (
    CostCapReached,
    ExchangeDown,
    OrdersRejected,
    StrategyFailed,
    VolumeNotCounted,
)
from userproc.guard import PriceGuard
from userproc.jitter import Jitter
from userproc.lifecycle import STRATEGY, Lifecycle, Phase, StopRequested
from userproc.markets import MarketPicker, Picked
from userproc.outcome import ERROR_KIND
from userproc.planner import (
    CreditModel,
    Plan,
    expected_quote,
    min_trade_amount,
    next_trade_amount,
    plan_batch,
)
from userproc.roundtrip import RoundTrip, TradeResult
from userproc.scope import counted_volume
from userproc.session import Market, Session

log = structlog.get_logger(__name__)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Batch:
    """A planned batch: its number in this run, the plan, the credit per USDT of buys it
    was planned with, the smallest sellable trade and the market it trades."""

    number: int
    plan: Plan
    ratio: Decimal
    min_amount: Decimal
    market: Market


@dataclass
class Tally:
    """What a batch's round trips did so far."""

    done: int = 0  # round trips that placed their OTO
    spent: Decimal = ZERO  # buy quote they spent (not yet read back from the volume)
    smallest: Decimal = ZERO  # smallest buy quote that filled
    failures: int = 0  # in a row: not placed, or not filled

    def add(self, res: TradeResult) -> None:
        self.done += 1
        quote = res.buy.quote
        self.spent += quote
        if quote > 0 and (self.smallest == 0 or quote < self.smallest):
            self.smallest = quote


class StrategyRunner:
    def __init__(self, session: Session, life: Lifecycle, settings: EffectiveSettings) -> None:
        self.s = session
        self.life = life
        self.st = settings
        self.sid = settings.strategy_id
        self.summary = m.StrategySummary(
            strategy_id=settings.strategy_id,
            token=settings.target_token,
            basis=settings.volume_basis,
            target=settings.target_volume,
        )
        self.guard = PriceGuard(session.tuning.volatility_window_seconds)
        self.batches = 0  # batches planned in this run
        self.flat_batches = 0  # settled batches in a row that bought but did not move the volume
        self.tally = Tally()  # the batch whose buys the volume has not been read after
        self.credits: dict[str, CreditModel] = {}  # per token: a switch keeps the bound
        self.market: Market | None = None
        self.mul_point = Decimal(1)
        self._applied_update: list[EffectiveSettings] | None = None
        self.picker = MarketPicker(session, life)
        self.picked: Picked | None = None
        self.jitter = Jitter(random.Random(session.tuning.jitter_seed))

    @property
    def credit(self) -> CreditModel:
        """What a USDT of buys earns on the token being traded (learnt per token)."""
        key = self.market.token if self.market is not None else ""
        return self.credits.setdefault(key, CreditModel(self.st.volume_basis))

    # ------------------------------------------------------------------ helpers
    async def resolve_market(self) -> Market:
        """The market of the next batch (``userproc.markets``); at a batch boundary only.
        Leaving a token sells the dust its round trips left, while it can be sold."""
        old = self.market
        picked = self.picked = await self.picker.pick(self.st, old)
        if old is not None and picked.market.token != old.token:
            log.info("token_switched", strategy_id=self.sid, old=old.token, new=picked.market.token)
            if old.token not in self.picker.delisted:
                await RoundTrip(self.s, old).sweep_dust(self.sid)
            self.guard = PriceGuard(self.s.tuning.volatility_window_seconds)
        self.market, self.mul_point = picked.market, picked.mul_point
        return self.market

    async def refresh_mul_point(self) -> Decimal:
        """After each batch: mulPoint changes at the UTC day boundary by the programme's
        rule (a new day always asks again), but the exchange may change it any time; a
        stale one would mislead the planner, so it is asked again unless the token list
        is younger than ``mul_point_max_age_seconds`` (a short run reads it once)."""
        try:
            token = await self.s.token(self._token, max_age=self.s.tuning.mul_point_max_age_seconds)
        except UnknownToken:  # gone from the list (delisted): the next batch picks again
            return self.mul_point
        self.mul_point = token.mul_point or Decimal(1)
        self.picker.mul_points[token.symbol] = self.mul_point
        return self.mul_point

    @property
    def _token(self) -> str:
        return self.market.token if self.market is not None else self.st.target_token

    def _mul_of(self, token: str) -> Decimal | None:
        return self.mul_point if token == self._token else self.picker.mul_points.get(token)

    async def _before_batch(self, remaining: Decimal, first: bool) -> Decimal:
        """A batch boundary: choose the market again (not for the first batch, whose was
        resolved at the start), then the balance floor: the volume this batch may trade
        without ending the day under ``min_balance_usdt`` (``LowBalance`` when none)."""
        if not first:
            await self.resolve_market()
        picked = self.picked
        assert picked is not None
        st = self.st
        trade = expected_quote(st.single_trade_amount_usdt, st.buy_offset_percentage)
        allowed = await balance_allows(
            self.s,
            st,
            remaining,
            trade * self.credit.ratio(self.mul_point),
            lambda: self.picker.cost_per_credit(picked),
        )
        if allowed < remaining:
            log.info("batch_cut_by_balance", strategy_id=self.sid, allowed=str(round(allowed, 2)))
        return allowed

    async def read_volume(self) -> Decimal:
        """Today's volume of the token in the strategy's basis (one read; see
        ``_confirmed`` for the second before "done")."""
        uv = await self.s.call("user_volume", self.s.client.user_volume)
        return counted_volume(self.st, uv, self._mul_of)

    async def _confirmed(self, current: Decimal) -> Decimal:
        """A figure at or over the target is read again (``volume_reads`` reads in all;
        two reads can disagree) and the lowest counts: "done" is never decided on a high
        outlier."""
        for _ in range(max(1, self.s.tuning.volume_reads) - 1):
            if current < self.st.target_volume:
                break
            current = min(current, await self.read_volume())
        return current

    def _check_cost_cap(self) -> None:
        cap = self.st.max_daily_cost_usdt
        if cap is None:
            return
        day = self.s.clock.utc_day().isoformat()
        spent = self.s.journal.cost_on(day)
        elsewhere = self.s.spent_elsewhere()  # a pool: what other nodes traded of the day
        there = (
            elsewhere.cost_usdt if elsewhere is not None and elsewhere.day == day else Decimal(0)
        )
        if spent + there >= cap:
            of = f" ({there} USDT of it on other nodes of the pool)" if there else ""
            raise CostCapReached(
                f"daily cost {spent + there} USDT{of} reached max_daily_cost_usdt {cap}"
            )

    async def _wait_stream(self) -> None:
        """No new order while the stream is down (``StopRequested`` if a stop comes)."""
        if self.s.stream_up.is_set():
            return
        self.life.to(Phase.WAITING_STREAM, "user stream down", strategy=self.sid)
        up = await self.life.until(self.s.stream_up, self.s.tuning.stream_connect_timeout, self.sid)
        self.life.check(self.sid)  # a stop that came with the stream: nothing new either
        if not up:
            raise ExchangeDown("user stream could not be (re)connected")

    def _observe_fill_price(self, symbol: str, mono: float, price: Decimal) -> None:
        if self.market is not None and symbol == self.market.symbol:
            self.guard.observe(mono, price)

    async def _price_ok(self) -> Decimal:
        """The market price once calm enough to buy; waits (WAITING_PRICE) until then.

        The price is our own last fill's (seen on the stream, already in the guard) while
        it is younger than ``fill_price_max_age_seconds``; else the ticker's."""
        assert self.market is not None
        limit = self.st.max_price_volatility_percentage
        while True:
            price = self.s.fresh_price(self.market.symbol)
            if price is None:
                t = await self.s.call("ticker", self.s.client.ticker, self.market.symbol)
                price = t.last_price
                self.guard.observe(self.s.clock.monotonic(), price)
            if not self.guard.too_volatile(limit):
                return price
            moved = self.guard.moved_percentage()
            if self.life.phase(self.sid) != Phase.WAITING_PRICE:
                log.warning(
                    "price_too_volatile",
                    moved_percentage=str(round(moved, 4)),
                    limit_percentage=str(limit),
                )
            self.life.to(Phase.WAITING_PRICE, f"price moved {round(moved, 2)}%", strategy=self.sid)
            self.s.forget_price(self.market.symbol)  # look again at the market, not our fills
            await self.life.sleep(self.s.tuning.volatility_wait_seconds, self.sid)

    async def settle(self, before: Decimal, spent: Decimal, smallest: Decimal) -> Decimal:
        """Let the exchange's volume catch up with what this batch bought: read until it
        shows the learnt credit (early) or ``volume_check_delay_seconds`` after the last
        fill have passed (its lag is bounded by that).

        "Shows the credit" has an absolute tolerance: less than half the credit of the
        batch's smallest filled buy (``smallest`` USDT of quote) may be missing. A relative
        one would hide a whole trade still inside the exchange's lag once a batch is a
        thousand trades long, and that trade would be bought again (bench/RESULTS.md).

        A stop ends the wait (``StopRequested``); ``run`` then reads the volume once."""
        self.life.to(Phase.SETTLING, strategy=self.sid)
        last = self.s.last_fill_mono or self.s.clock.monotonic()
        deadline = last + self.st.volume_check_delay_seconds
        ratio = self.credit.ratio(self.mul_point)
        expect = ratio * spent if self.credit.learned else None
        tolerance = ratio * smallest / 2
        while True:
            now = self.s.clock.monotonic()
            if expect is None and now < deadline:
                # unverified: the only safe figure is the one after the whole window
                await self.life.sleep(deadline - now, self.sid)
                continue
            sent = self.s.clock.monotonic()
            v = await self.read_volume()
            if expect is not None and (spent == 0 or expect - (v - before) < tolerance):
                return v
            if sent >= deadline:  # asked after the window: it reflects every fill
                return v
            # asked inside the window (a slow or retried read can return after it): such a
            # figure may predate fills it is meant to reflect; never learn from it
            wait = min(self.s.tuning.settle_poll_seconds, deadline - self.s.clock.monotonic())
            await self.life.sleep(max(0.0, wait), self.sid)

    async def _last_read(self, before: Decimal, spent: Decimal) -> Decimal:
        """Stopping after trades: one more read, so the summary shows the latest volume
        the exchange reported (it may still lag by ``volume_check_delay_seconds``)."""
        if spent <= 0:
            return before
        try:
            return await self.read_volume()
        except Exception as exc:  # best effort on the way out; the last figure stands
            log.info("last_volume_read_failed", error=type(exc).__name__)
            return before

    def _apply_settings_update(self) -> bool:
        """``UpdateSettings`` from the supervisor takes effect from the next batch. False
        when this strategy is no longer in the settings (or is disabled)."""
        update = self.s.pending_settings()
        if update is None or update is self._applied_update:
            return True
        self._applied_update = update
        for new in update:
            if new.strategy_id == self.st.strategy_id:
                if not new.enabled:
                    return False
                if new != self.st:
                    log.info("settings_updated", strategy_id=new.strategy_id)
                self.st = new
                self.s.settings = new
                self.life.set_grace(self.sid, new.stop_grace_seconds)
                self.summary.target = new.target_volume
                return True
        return False

    # ------------------------------------------------------------------ the loop
    async def run(self) -> m.StrategySummary:
        """Run the strategy to its target (or until stopped), then sell the dust its
        round trips left where it adds up to a sellable amount. Its own task's context
        names it (``STRATEGY``), so shared helpers know whose stop applies.

        The one place a stop ends the strategy: ``StopRequested`` (from the lifecycle's
        gate or a wait) is caught here; buys not yet read back get one last volume read."""
        STRATEGY.set(self.sid)
        try:
            try:
                self.life.begin_strategy(self.sid, self.st.stop_grace_seconds)
                await self._run()
            except StopRequested:
                if self.tally.spent > 0:  # trades since the last read: show where they got
                    final = self.summary.final_volume or ZERO
                    self.summary.final_volume = await self._last_read(final, self.tally.spent)
            if self.market is not None and not self.life.stopping(self.sid):
                self.summary.dust = await RoundTrip(self.s, self.market).sweep_dust(self.sid)
            return self.summary
        finally:
            self.life.end_strategy(self.sid, self.life.reason(self.sid))

    async def _run(self) -> None:
        """Batch after batch (check, plan, trade, settle) until done."""
        await self.resolve_market()
        self.s.price_listeners.append(self._observe_fill_price)
        day = self.s.clock.utc_day()
        current = self.s.known_volume(self.sid)
        if current is None:
            current = await self.read_volume()
        while (checked := await self._check(current, day)) is not None:
            batch = await self._plan(checked)
            self.tally = await self.run_batch(batch)
            current = await self._settle(checked, batch)

    async def _check(self, current: Decimal, day: date) -> Decimal | None:
        """CHECKING: the settings update, today's volume reported, the target (confirmed
        by a second read), the stop gate, the UTC day and the cost cap. None: done."""
        self.life.to(Phase.CHECKING, strategy=self.sid)
        if not self._apply_settings_update():
            log.info("strategy_removed_by_update", strategy_id=self.sid)
            return None
        st = self.st
        self.summary.final_volume = current
        if self.summary.start_volume is None:
            self.summary.start_volume = current
        self.s.tell(
            m.VolumeChecked(
                user_id=self.s.user_id,
                strategy_id=st.strategy_id,
                token=st.target_token,
                current=current,
                target=st.target_volume,
                basis=st.volume_basis,
                mul_point=self.mul_point,
            ),
            "volume_checked",
        )
        if current >= st.target_volume:
            current = self.summary.final_volume = await self._confirmed(current)
        if current >= st.target_volume:
            self.summary.reached = True
            log.info("target_reached", strategy_id=st.strategy_id, volume=str(current))
            return None
        self.life.check(self.sid)
        if self.s.clock.utc_day() != day:
            # the volume counts per UTC day: the supervisor starts the new day afresh
            log.info("utc_day_ended", strategy_id=st.strategy_id, day=day.isoformat())
            return None
        self._check_cost_cap()
        return current

    async def _plan(self, current: Decimal) -> Batch:
        """The next batch: its market and balance floor, then how many trades of what."""
        st = self.st
        remaining = st.target_volume - current
        allowed = await self._before_batch(remaining, first=self.batches == 0)
        assert self.market is not None
        min_amount = min_trade_amount(
            self.market.filters.min_notional or Decimal("0.1"), st.sell_profit_percentage
        )
        ratio = self.credit.ratio(self.mul_point)
        plan = plan_batch(
            remaining=allowed,
            amount=st.single_trade_amount_usdt,
            buy_offset_pct=st.buy_offset_percentage,
            ratio=ratio,
            learned=self.credit.learned,
            min_amount=min_amount,
        )
        if plan.loops <= 0:
            raise StrategyFailed(f"cannot plan a trade for {st.strategy_id}: amount or credit is 0")
        self.batches += 1
        self.s.tell(
            m.BatchPlanned(
                user_id=self.s.user_id,
                strategy_id=st.strategy_id,
                batch=self.batches,
                loops=plan.loops,
                remaining=remaining,
                credit_per_trade=plan.credit_per_trade,
                learned=plan.learned,
            ),
            "batch_planned",
            mul_point=self.mul_point,
        )
        return Batch(self.batches, plan, ratio, min_amount, self.market)

    async def _settle(self, before: Decimal, batch: Batch) -> Decimal:
        """SETTLING: the exchange's figure catches up; the credit is learnt from it."""
        spent = self.tally.spent
        current = await self.settle(before, spent, self.tally.smallest)
        self.tally = Tally()  # read back
        await self.refresh_mul_point()
        self.credit.observe(current - before, spent, self.mul_point)
        if spent > 0 and current <= before:
            self.flat_batches += 1
            if self.flat_batches >= 3:
                raise VolumeNotCounted(
                    f"{self.flat_batches} batches filled but today's {self.st.target_token}"
                    " volume did not move: is the token counted?"
                )
        elif current > before:
            self.flat_batches = 0
        log.info(
            "batch_settled",
            strategy_id=self.sid,
            batch=batch.number,
            volume_delta=str(current - before),
            buy_quote=str(spent),
            learned_ratio=str(round(self.credit.ratio(self.mul_point), 6)),
        )
        return current

    # ------------------------------------------------------------------ one batch
    async def run_batch(self, batch: Batch) -> Tally:
        """Up to ``batch.plan.loops`` round trips; the tally of what they did. Ends early
        on new settings, when the target is near enough, or when its token stopped
        trading; a stop raises ``StopRequested`` (with ``self.tally`` up to date)."""
        tally = self.tally = Tally()
        rt = RoundTrip(self.s, batch.market)
        while tally.done < batch.plan.loops:
            self.life.check(self.sid)
            pending = self.s.pending_settings()
            if pending is not None and pending is not self._applied_update:
                break  # new settings: end this batch here, the next one uses them
            trade = await self._next_trade(batch, tally)
            if trade is None:
                break
            amount, price = trade
            self.life.to(
                Phase.TRADING, f"trade {tally.done + 1}/{batch.plan.loops}", strategy=self.sid
            )
            res = await rt.run(amount, price)
            if res.placed:
                await self._placed(batch, tally, res)
            elif not await self._not_placed(tally, res):
                break
        return tally

    async def _next_trade(self, batch: Batch, tally: Tally) -> tuple[Decimal, Decimal] | None:
        """(amount, market price) of the next round trip, once the stream is up and the
        price calm; None when the batch is near enough its target to end."""
        st = self.st
        full = self.jitter.amount(batch.plan.amount, st.amount_jitter_percentage)
        credit_full = expected_quote(full, st.buy_offset_percentage) * batch.ratio
        amount = next_trade_amount(
            missing=batch.plan.remaining - tally.spent * batch.ratio,
            amount=full,
            credit_full=credit_full,
            min_amount=batch.min_amount,
            learned=batch.plan.learned,
            first_of_batch=(tally.spent == 0),
        )
        if amount is None:
            return None
        self._check_cost_cap()
        await self._wait_stream()
        price = await self._price_ok()
        f = batch.market.filters
        floor = min_trade_amount(
            f.min_notional or Decimal("0.1"),
            st.sell_profit_percentage,
            step=f.step_size,
            price=price,
        )
        return min(max(amount, floor), max(full, floor)), price

    async def _not_placed(self, tally: Tally, res: TradeResult) -> bool:
        """A round trip that placed nothing; False: end the batch."""
        st = self.st
        if res.outcome == "stopped":  # refused by the gate: a stop is in force
            self.life.check(self.sid)
            return False
        if res.outcome == "balance_wait":  # another strategy held the funds: take turns
            await self.s.others_idle(st.order_timeout_seconds)
            return True
        tally.failures += 1
        self.s.emit(
            m.ErrorReport(
                user_id=self.s.user_id,
                kind=ERROR_KIND[res.outcome],
                message=res.error or res.outcome,
                strategy_id=st.strategy_id,
            )
        )
        if res.outcome == "rejected" and await self._left_trading():
            return False  # at the batch boundary: another token (auto), or the end
        if tally.failures >= self.s.tuning.max_consecutive_failures:
            why = f"{tally.failures} orders in a row were not placed: {res.error}"
            if res.outcome == "rejected":
                raise OrdersRejected(why)
            raise ExchangeDown(why)
        await self.life.sleep(st.retry_delay_seconds, self.sid)
        return True

    async def _placed(self, batch: Batch, tally: Tally, res: TradeResult) -> None:
        """A round trip that placed its OTO: counted, reported, then the interval."""
        st = self.st
        tally.add(res)
        if res.buy.qty == 0:  # placed but never filled (cancelled after the timeout)
            tally.failures += 1
            self.s.emit(
                m.ErrorReport(
                    user_id=self.s.user_id,
                    kind="no_fill",
                    message=f"buy not filled within {st.order_timeout_seconds}s; cancelled",
                    strategy_id=st.strategy_id,
                )
            )
            if tally.failures >= self.s.tuning.max_consecutive_failures:
                raise ExchangeDown(
                    f"{tally.failures} buys in a row did not fill; cancelled them all"
                )
        else:
            tally.failures = 0
            self.summary.trades += 1
        self.summary.cost += res.cost
        self.s.tell(
            m.TradeDone(
                user_id=self.s.user_id,
                strategy_id=st.strategy_id,
                batch=batch.number,
                index=tally.done,
                loops=batch.plan.loops,
                buy_quote=res.buy.quote,
                sell_quote=res.sell.quote,
                credit=res.buy.quote * batch.ratio,
                cost=res.cost,
                cost_today=self.s.journal.cost_on(self.s.clock.utc_day().isoformat()),
                buy_fill_seconds=res.buy_fill_seconds,
                sell_fill_seconds=res.sell_fill_seconds,
            ),
            "trade_done",
            *("strategy_id", "buy_quote", "credit", "cost"),
            loop=f"{tally.done}/{batch.plan.loops}",
        )
        self._check_cost_cap()
        pause = self.jitter.interval(st.trade_interval_seconds, st.interval_jitter_seconds)
        if tally.done < batch.plan.loops and pause > 0:
            self.life.to(Phase.INTERVAL, strategy=self.sid)
            await self.life.sleep(pause, self.sid)

    async def _left_trading(self) -> bool:
        """After a refused buy: has its token stopped trading (BREAK, DELISTED)?"""
        assert self.market is not None
        why = await self.picker.stopped_trading(self.market)
        if why:
            log.warning("token_stopped_trading", token=self.market.token, why=why)
        return why is not None
