"""One OTO round trip (seed 002), from the price to the last fill, and its clean-up.

Order of events, each step written down before it matters:
1. prices: buy = market x (1 + buy offset), sell = buy x (1 - sell offset), quantity =
   amount / buy, all through ``exchange.ordermath``;
2. journal intent (committed) -> POST the OTO -> journal both ids. A POST whose outcome is
   unknown is looked up (``lookup``), never re-sent;
3. wait for the buy fill, then the sell fill, on tracker changes (stream events), asking
   REST when a wait is about to time out;
4. buy not filled in time (or stop "now"): cancel it (which cancels the OTO); sell not
   filled in time: cancel it. Whatever tokens we still hold from this trade are sold with
   a marketable plain limit order, a bounded number of times; if that fails the user
   pauses (``LeftoverError`` names token and quantity). Amounts below the lot step or the
   minimum notional are dust: reported, not paused for;
5. cost from the exchange's own fills: quote paid - quote received + the fees taken in
   USDT. The figures come from the stream's reports when the stream stayed up through
   the whole trade and reported every fill consistently (``OrderState.stream_exact``),
   else from REST user trades (a reconnect, a missed report, a trade adopted after a
   restart). The buy fee is taken in the token: it is already inside the cost as the tokens
   that could not be sold, so valuing it again would count it twice.

``finish`` (legs, then settle, then leftover) is shared with recovery, which adopts
orders found after a restart. How each trade ended is an ``outcome.Outcome``; what the
journal says of a POST that raised is one table (``outcome.NOT_PLACED``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from config.settings import EffectiveSettings
from exchange import ordermath
from exchange.errors import (
    InsufficientBalance,
    OrderNotOpen,
    OrderParametersRejected,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    RiskChallenge,
)
from exchange.models import LimitOrderRequest, OtoOrderRequest, OtoPlaced
from protocol import messages as m
from userproc.errors import LeftoverError, StrategyFailed
from userproc.journal import TradeRow
from userproc.lifecycle import STRATEGY, StopMode
from userproc.lookup import lookup_oto, lookup_sell
from userproc.outcome import REFUSALS, ChallengedWithLeftover, NotPlaced, Outcome, not_placed
from userproc.session import Fills, Market, Session
from userproc.tracker import OrderState

log = structlog.get_logger(__name__)
HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass
class TradeResult:
    trade_id: int
    outcome: Outcome  # DONE | NO_FILL | NOT_PLACED | REJECTED | STOPPED | BALANCE_WAIT
    buy: Fills = field(default_factory=Fills)
    sell: Fills = field(default_factory=Fills)  # OTO sell + leftover sells together
    cost: Decimal = ZERO
    dust: Decimal = ZERO  # tokens of this trade too small to sell
    buy_fill_seconds: float | None = None
    sell_fill_seconds: float | None = None
    error: str | None = None

    @property
    def placed(self) -> bool:
        return self.outcome in (Outcome.DONE, Outcome.NO_FILL)


def _is_terminal(s: OrderState) -> bool:
    return s.terminal


def _never() -> bool:
    return False


class RoundTrip:
    def __init__(self, session: Session, market: Market) -> None:
        self.s = session
        self.market = market

    @property
    def settings(self) -> EffectiveSettings:  # the strategy being run
        return self.s.settings

    @property
    def sid(self) -> str | None:  # whose stop applies (None: the process, e.g. recovery)
        return STRATEGY.get()

    # ------------------------------------------------------------------ placing
    async def run(self, amount: Decimal, market_price: Decimal) -> TradeResult:
        """One round trip. While the balance covers only one round trip at a time (the
        user's strategies run side by side and the exchange refused one for balance),
        the strategies take turns instead of fighting over the funds."""
        if not self.s.serial:
            return await self._run(amount, market_price)
        async with self.s.trip_lock:
            return await self._run(amount, market_price)

    async def _run(self, amount: Decimal, market_price: Decimal) -> TradeResult:
        st = self.settings
        f = self.market.filters
        buy_raw = market_price * (1 + st.buy_offset_percentage / HUNDRED)
        buy_price = ordermath.round_price(buy_raw, f.tick_size, "BUY")
        sell_raw = buy_price * (1 - st.sell_profit_percentage / HUNDRED)
        try:
            req = ordermath.plan_oto(f, buy_raw, sell_raw, amount)
        except ordermath.OrderMathError as exc:  # e.g. a price of 0: nothing was sent
            log.warning("oto_not_planned", error=str(exc))
            return TradeResult(0, Outcome.REJECTED, error=str(exc))
        if not self.s.life.may_place(st.strategy_id):  # nothing awaited since: no race
            log.info("oto_not_placed_stopping", reason=self.s.life.reason(st.strategy_id))
            return TradeResult(0, Outcome.STOPPED, error="stop requested")
        sid = st.strategy_id
        self.s.trip_started(sid)
        try:
            return await self._place(req)
        finally:
            self.s.trip_ended(sid)

    async def _place(self, req: OtoOrderRequest) -> TradeResult:
        st = self.settings
        now_ms = self.s.clock.now_ms()
        tid = self.s.journal.record_intent(
            kind="oto",
            strategy_id=st.strategy_id,
            day=self.s.clock.utc_day().isoformat(),
            symbol=self.market.symbol,
            base_asset=self.market.base_asset,
            token=self.market.token,
            qty=req.working_quantity,
            buy_price=req.working_price,
            sell_price=req.pending_price,
            amount=req.payment_amount,
            intent_ms=now_ms,
        )
        log.info(
            "oto_placing",
            trade_id=tid,
            symbol=req.symbol,
            buy_price=str(req.working_price),
            sell_price=str(req.pending_price),
            qty=str(req.working_quantity),
            amount=str(req.payment_amount),
        )
        t0 = self.s.clock.monotonic()
        epoch: int | None = self.s.stream_epoch if self.s.stream_up.is_set() else None
        try:
            placed: OtoPlaced = await self.s.client.place_oto(req)
            working, pending = str(placed.working_order_id), str(placed.pending_order_id)
        except RiskChallenge as exc:
            left = await self._adopt_challenged(tid, exc)
            if left is None:
                raise
            raise ChallengedWithLeftover(exc, left) from exc
        except OutcomeUnknown as exc:
            log.warning("oto_outcome_unknown", trade_id=tid, error=str(exc))
            found = await lookup_oto(self.s, self.s.journal.get(tid))
            if found is None:
                self.not_placed(tid, Outcome.NOT_PLACED, "looked up: not found")
                return TradeResult(tid, Outcome.NOT_PLACED, error=str(exc))
            working, pending = found
            epoch = None  # looked up: take the fills from REST
        except REFUSALS as exc:  # nothing was placed
            if self._refusal(tid, exc, "oto").fatal:  # session, proxy: stop the user
                raise
            return await self._oto_refused(tid, exc)
        self.s.journal.record_ids(tid, working, pending)
        self.s.amount_refusals[st.strategy_id] = 0
        log.info("oto_placed", trade_id=tid, working_order_id=working, pending_order_id=pending)
        return await self.finish(self.s.journal.get(tid), started_mono=t0, stream_epoch=epoch)

    def not_placed(self, trade_id: int, outcome: Outcome, note: str = "") -> None:
        """The journal's word that this trade's order was certainly never placed."""
        self.s.journal.record_not_placed(trade_id, outcome, self.s.clock.now_ms(), note)

    def _refusal(self, trade_id: int, exc: Exception, kind: str) -> NotPlaced:
        """Write down a refused POST (``outcome.NOT_PLACED``); returns the table's row."""
        row = not_placed(exc)
        self.not_placed(trade_id, row.outcome(kind), row.note(exc))
        return row

    async def _oto_refused(self, tid: int, exc: Exception) -> TradeResult:
        """A round trip whose OTO was not placed (already in the journal)."""
        if isinstance(exc, OrderRejected):
            log.warning("oto_rejected", trade_id=tid, code=exc.code, error=str(exc))
            return TradeResult(tid, self._refused(exc), error=str(exc))
        if isinstance(exc, RateLimited):  # refused before it was processed: wait as told
            log.warning("oto_rate_limited", trade_id=tid, retry_after=exc.retry_after)
            # cut short by a stop; the runner's next wait raises it
            await self.s.life.wait(self.sid, StopMode.DRAIN, exc.retry_after)
        else:  # the client knows the request never left
            log.warning("oto_not_sent", trade_id=tid, error=str(exc))
        return TradeResult(tid, Outcome.NOT_PLACED, error=str(exc))

    def _refused(self, exc: OrderRejected) -> Outcome:
        """What a refusal means for this user: insufficient balance stops it at once
        (unless another strategy of the user holds the funds for a round trip: then they
        take turns from now on, "balance_wait"); a refused price or amount means our order
        maths or the symbol's filters are wrong, so the strategy stops (code 000002 also
        came back for correct amounts, so only a repeat of it counts). Other refusals
        ("rejected") are retried a bounded number of times."""
        sid = self.settings.strategy_id
        if isinstance(exc, InsufficientBalance):
            if self.s.others_trading():
                self.s.serial = True
                log.warning("balance_covers_one_round_trip_at_a_time", strategy_id=sid)
                return Outcome.BALANCE_WAIT
            raise exc
        if isinstance(exc, OrderParametersRejected):
            refusals = self.s.amount_refusals[sid] = self.s.amount_refusals.get(sid, 0) + 1
            if exc.code != "000002" or refusals > 1:
                raise StrategyFailed(
                    f"the exchange refuses this strategy's orders' price or amount on"
                    f" {self.market.symbol} ({exc.message}, code {exc.code}): the order maths"
                    " or the symbol's filters are wrong; not trading it"
                )
        return Outcome.REJECTED

    async def _adopt_challenged(self, tid: int, exc: RiskChallenge) -> LeftoverError | None:
        """A risk challenge on a reply that may have placed the order: find the order,
        finish its round trip (or cancel and sell), then let the user stop. Returns what
        that round trip could not sell (the challenge stays the reason to stop)."""
        found: tuple[str, str] | None = None
        placed = exc.placed
        if isinstance(placed, OtoPlaced):
            found = (str(placed.working_order_id), str(placed.pending_order_id))
        elif exc.may_exist:
            found = await lookup_oto(self.s, self.s.journal.get(tid))
        if found is None:
            self.not_placed(tid, Outcome.REFUSED, "risk")
            return None
        log.error("risk_challenge_on_a_placed_order", trade_id=tid, working_order_id=found[0])
        self.s.journal.record_ids(tid, *found)
        try:
            await self.finish(self.s.journal.get(tid))
        except LeftoverError as left:
            return left
        return None

    # ------------------------------------------------------------------ waiting
    async def _wait(
        self,
        order_id: str,
        pred: Callable[[OrderState], bool],
        seconds: float,
        *,
        stoppable: bool,
        ask_first: bool = False,
        hint: Callable[[], bool] = _never,
    ) -> OrderState | None:
        """Wait for ``pred`` on the order. The stream tells first; REST is asked at once
        when ``ask_first`` (an adopted order: its reports may have come and gone while no
        one listened), as soon as the order is overdue compared with the fills this
        process has been seeing (``Session.overdue_after``: a dropped report costs about
        that, not ``rest_check_seconds``), then at doubling gaps up to
        ``rest_check_seconds``, and once more when the wait is about to time out. ``hint``
        asks REST at once when another order says this one must have ended (an OTO's sell
        activated: its buy filled, even if that report was lost)."""
        start = self.s.clock.monotonic()
        deadline = start + seconds
        interrupt = self.s.life.event(self.sid, StopMode.NOW) if stoppable else None
        gap = self.s.overdue_after()
        if ask_first:
            await self.s.refresh_orders([order_id])
        while True:
            left = deadline - self.s.clock.monotonic()
            chunk = min(max(0.0, left), gap)
            st = await self.s.tracker.wait(order_id, pred, chunk, interrupt, hint)
            if st is not None:
                self.s.observe_latency(self.s.clock.monotonic() - start)
                return st
            hinted = hint()
            await self.s.refresh_orders([order_id])
            st = self.s.tracker.get(order_id)
            if st is not None and pred(st):
                return st
            if interrupt is not None and interrupt.is_set():
                return None
            if self.s.clock.monotonic() >= deadline:
                return None
            if hinted:  # asked; the hint holds on: wait the usual way from here
                hint = _never
            gap = min(gap * 2, self.s.tuning.rest_check_seconds)

    async def _leg(
        self,
        trade_id: int,
        order_id: str,
        leg: str,
        *,
        ask_first: bool,
        hint: Callable[[], bool] = _never,
    ) -> None:
        """Wait for the end of one leg ("buy" or "sell"), not just a fill: one cancelled
        or expired by the exchange (or by hand) must not keep us waiting until the
        timeout. A leg still open after ``order_timeout_seconds`` (or on a stop "now") is
        cancelled."""
        timeout = self.settings.order_timeout_seconds
        st = await self._wait(
            order_id, _is_terminal, timeout, stoppable=True, ask_first=ask_first, hint=hint
        )
        if st is not None and st.filled:
            return
        if st is not None:
            why = f"{leg} ended {st.status}"
        else:
            why = "stop requested" if self.s.life.is_now(self.sid) else f"{leg} not filled in time"
        log.warning(f"{leg}_not_filled", trade_id=trade_id, order_id=order_id, reason=why)
        if st is None:
            await self._cancel(order_id)

    def _activated(self, pending: str | None) -> bool:
        """The OTO's sell is live: the exchange activates it only once the buy filled."""
        st = self.s.tracker.get(pending) if pending else None
        return st is not None and st.status in ("NEW", "PARTIALLY_FILLED", "FILLED")

    async def _cancel(self, order_id: str) -> None:
        """Cancel and learn the final state (the cancel may race a fill)."""
        try:
            await self.s.call("cancel", self.s.client.cancel, order_id, self.market.symbol)
            log.info("order_cancelled", order_id=order_id)
        except OrderNotOpen:
            log.info("order_not_open_on_cancel", order_id=order_id)
        for _ in range(max(1, self.s.tuning.lookup_attempts)):
            await self.s.refresh_orders([order_id])
            st = self.s.tracker.get(order_id)
            if st is not None and st.terminal:
                return
            await self.s.clock.sleep(self.s.tuning.lookup_delay_seconds)

    # ------------------------------------------------------------------ finishing
    def _stream_trusted(self, epoch: int | None) -> bool:
        """The stream was up from before the POST until now, without a reconnect."""
        return epoch is not None and epoch == self.s.stream_epoch and self.s.stream_up.is_set()

    async def finish(
        self,
        row: TradeRow,
        started_mono: float | None = None,
        stream_epoch: int | None = None,
    ) -> TradeResult:
        """Drive a placed OTO to the end: both legs filled, or cancelled and sold.
        ``stream_epoch``: ``Session.stream_epoch`` before the POST (None after a restart
        or a look-up: the fills then come from REST). Three steps: the legs (wait, or
        cancel), settle (the fills, in the journal), the leftover (sell what is left,
        then the cost and the outcome)."""
        res = TradeResult(row.id, Outcome.DONE)
        t0 = started_mono if started_mono is not None else self.s.clock.monotonic()
        await self._legs(row, res, t0, adopted=stream_epoch is None)
        await self._settle(row, res, trust=self._stream_trusted(stream_epoch))
        return await self._leftover(row, res)

    async def _legs(self, row: TradeRow, res: TradeResult, t0: float, *, adopted: bool) -> None:
        """Wait for the buy, then the sell (an order still open at its timeout is
        cancelled; a cancelled buy takes its pending sell with it). ``adopted``: after a
        restart or a look-up, REST is asked at once."""
        working, pending = row.working_id, row.pending_id
        assert working is not None
        self.s.track(working, row.intent_ms, symbol=row.symbol, side="BUY")
        if pending:
            self.s.track(pending, row.intent_ms, symbol=row.symbol, side="SELL")
        await self._leg(
            row.id, working, "buy", ask_first=adopted, hint=lambda: self._activated(pending)
        )
        bst = self.s.tracker.get(working)
        res.buy_fill_seconds = self._filled_since(bst, t0)
        t1 = self.s.clock.monotonic()
        if pending:
            bought = bst is not None and bst.filled
            await self._sell_leg(row.id, pending, bought=bought, adopted=adopted)
            res.sell_fill_seconds = self._filled_since(self.s.tracker.get(pending), t1)
        self.s.untrack(working, pending)
        bst, pst = self.s.tracker.get(working), self.s.tracker.get(pending)
        if not (bst is not None and bst.filled and (not pending or (pst and pst.filled))):
            self.s.forget_price(self.market.symbol)  # it did not fill as priced

    async def _sell_leg(self, trade_id: int, pending: str, *, bought: bool, adopted: bool) -> None:
        """The OTO's sell: waited for when the buy filled, else made sure of as gone."""
        if bought:
            await self._leg(trade_id, pending, "sell", ask_first=adopted)
            return
        # the buy was cancelled: its pending sell goes with it; make sure
        pst = self.s.tracker.get(pending)
        if pst is None or not pst.terminal:
            await self.s.refresh_orders([pending])
            pst = self.s.tracker.get(pending)
            if pst is not None and pst.open and pst.status != "PENDING":
                await self._cancel(pending)

    def _filled_since(self, st: OrderState | None, since: float) -> float | None:
        """Seconds from ``since`` to now when the order filled at all (None if not)."""
        if st is None or st.cum_qty <= 0:
            return None
        now = self.s.clock.monotonic()
        self.s.last_fill_mono = now
        return now - since

    async def _settle(self, row: TradeRow, res: TradeResult, *, trust: bool) -> None:
        """The trade's fills (the stream's when ``trust``ed and complete, else REST's),
        with the leftover sells an earlier run of this trade made, in the journal."""
        working, pending = row.working_id, row.pending_id
        res.buy = await self.s.fills(working, self.market, trust_stream=trust)
        res.sell = (
            await self.s.fills(pending, self.market, trust_stream=trust) if pending else Fills()
        )
        self.s.tracker.forget(working, pending)
        # earlier leftover sells of this trade (after a restart) count as sold too
        for child in self.s.journal.children(row.id):
            if child.working_id and child.outcome is not None:
                cf = await self.s.fills(child.working_id, self.market)
                _add(res.sell, cf)
        self.s.journal.record_fills(
            row.id,
            buy_qty=res.buy.qty,
            buy_quote=res.buy.quote,
            buy_fee_usdt=res.buy.fee_usdt,
            sell_qty=res.sell.qty,
            sell_quote=res.sell.quote,
            sell_fee_usdt=res.sell.fee_usdt,
        )

    async def _leftover(self, row: TradeRow, res: TradeResult) -> TradeResult:
        """Sell what the trade bought and did not sell, then close it: its cost and
        outcome, the dust it left; a sellable amount that could not be sold pauses the
        user (``LeftoverError``)."""
        left = res.buy.qty - res.buy.fee_base - res.sell.qty - res.sell.fee_base
        if left > 0:
            left = await self._sell_leftover(row, left, res)
        # what the exchange took in USDT: paid - received + USDT fees. A fee taken in the
        # token needs no valuing: those tokens are simply not there to sell, so the sell
        # quote is already that much lower (adding it again would count it twice).
        res.cost = res.buy.quote + res.buy.fee_quote - res.sell.quote + res.sell.fee_quote
        res.outcome = Outcome.DONE if res.buy.qty > 0 else Outcome.NO_FILL
        if left > 0 and not self._is_dust(left):
            self.s.journal.finish(row.id, Outcome.LEFTOVER, self.s.clock.now_ms(), cost=res.cost)
            raise LeftoverError(self.market.base_asset, self.market.token, left)
        res.dust = max(left, ZERO)
        if res.dust > 0:
            log.info("dust_left", trade_id=row.id, token=self.market.token, quantity=str(res.dust))
        now = self.s.clock.now_ms()
        self.s.journal.finish(row.id, res.outcome, now, cost=res.cost, dust=res.dust)
        log.info(
            "round_trip_done",
            trade_id=row.id,
            outcome=res.outcome.value,
            buy_quote=str(res.buy.quote),
            sell_quote=str(res.sell.quote),
            cost=str(res.cost),
        )
        return res

    # ------------------------------------------------------------------ dust
    async def sweep_dust(self, strategy_id: str) -> m.Leftover | None:
        """Each round trip leaves a little of the token unsold (the buy fee is taken in it
        and the sell is floored to the lot step); over many trades it adds up to a
        sellable amount. Sell what the journal's dust ledger says is ours and sellable
        (never more than the wallet holds); returns what is still left, valued at the
        market, or None when nothing is."""
        token = self.market.token
        dust = self.s.journal.dust(token)
        if dust <= 0:
            return None
        price = self.s.fresh_price(self.market.symbol)
        if price is None:
            ticker = await self.s.call("ticker", self.s.client.ticker, self.market.symbol)
            price = ticker.last_price
        self._last_price = price
        left = dust
        if not self._is_dust(dust, price):  # sellable: what the wallet really holds, at most
            held = ZERO
            for b in await self.s.call("wallet", self.s.client.wallet):
                if b.asset == self.market.base_asset or b.symbol == token:
                    held += b.free or ZERO
            qty = min(dust, held)
        else:
            qty = ZERO
        if qty > 0 and not self._is_dust(qty):
            tid = self.s.journal.record_intent(
                kind="sweep",
                strategy_id=strategy_id,
                day=self.s.clock.utc_day().isoformat(),
                symbol=self.market.symbol,
                base_asset=self.market.base_asset,
                token=token,
                qty=qty,
                intent_ms=self.s.clock.now_ms(),
            )
            log.info("dust_sweeping", token=token, quantity=str(qty))
            res = TradeResult(tid, Outcome.DONE)
            rest = await self._sell_leftover(self.s.journal.get(tid), qty, res)
            cost = res.sell.fee_quote - res.sell.quote  # money back
            self.s.journal.record_fills(tid, sell_qty=res.sell.qty, sell_quote=res.sell.quote)
            self.s.journal.finish(tid, Outcome.SWEPT, self.s.clock.now_ms(), cost=cost)
            left = dust - (qty - rest)
        if left <= 0:
            return None
        value = (left * price).quantize(Decimal("0.00000001"))
        log.info("dust_kept", token=token, quantity=str(left), value_usdt=str(value))
        return m.Leftover(
            asset=self.market.base_asset, token=token, quantity=left, value_usdt=value
        )

    # ------------------------------------------------------------------ leftovers
    def _is_dust(self, qty: Decimal, price: Decimal | None = None) -> bool:
        f = self.market.filters
        q = ordermath.floor_qty(qty, f.step_size) if f.step_size else qty
        if q <= 0 or (f.min_qty and q < f.min_qty):
            return True
        p = price if price is not None else self._last_price
        return bool(p and p > 0 and f.min_notional and q * p < f.min_notional)

    _last_price: Decimal | None = None

    async def _sell_leftover(self, row: TradeRow, left: Decimal, res: TradeResult) -> Decimal:
        """Sell ``left`` tokens of this trade with marketable plain limit orders, a
        bounded number of times; returns what is still left."""
        if self._is_dust(left, ZERO):  # below the lot step: no price needed to know
            return left
        for attempt in range(1, self.s.tuning.leftover_sell_attempts + 1):
            req = await self._leftover_order(left)
            if req is None:
                return left
            sold = await self._sell(row, req, attempt)
            if sold is None:
                continue
            _add(res.sell, sold)
            left -= sold.qty + sold.fee_base
            if left <= 0 or self._is_dust(left):
                return left
        return left

    async def _leftover_order(self, left: Decimal) -> LimitOrderRequest | None:
        """A marketable sell of ``left`` at the ticker's price less the discount; None
        when ``left`` is dust at that price."""
        tu = self.s.tuning
        ticker = await self.s.call("ticker", self.s.client.ticker, self.market.symbol)
        price = ticker.last_price * (1 - tu.leftover_sell_discount_percentage / HUNDRED)
        self._last_price = ticker.last_price
        if self._is_dust(left, price):
            return None
        try:
            return ordermath.plan_limit(self.market.filters, "SELL", price, left)
        except ordermath.OrderMathError as exc:
            log.info("leftover_is_dust", quantity=str(left), why=str(exc))
            return None

    async def _sell(self, row: TradeRow, req: LimitOrderRequest, attempt: int) -> Fills | None:
        """Place one leftover sell of trade ``row`` and see it to its end; its fills, or
        None when it was not placed."""
        tid = self.s.journal.record_intent(
            kind="sell",
            parent_id=row.id,
            strategy_id=row.strategy_id,
            day=self.s.clock.utc_day().isoformat(),
            symbol=row.symbol,
            base_asset=row.base_asset,
            token=row.token,
            qty=req.quantity,
            sell_price=req.price,
            intent_ms=self.s.clock.now_ms(),
        )
        epoch = self.s.stream_epoch if self.s.stream_up.is_set() else None
        log.info(
            "leftover_selling",
            attempt=attempt,
            quantity=str(req.quantity),
            price=str(req.price),
        )
        try:
            oid: str = await self.s.client.place_limit(req)
        except OutcomeUnknown:
            found = await lookup_sell(self.s, self.s.journal.get(tid))
            if found is None:
                self.not_placed(tid, Outcome.NOT_PLACED)
                return None
            oid, epoch = found, None
        except REFUSALS as exc:
            if self._refusal(tid, exc, "sell").fatal:  # session, risk, proxy: stop the user
                raise
            await self._sell_refused(exc)
            return None
        self.s.journal.record_ids(tid, oid)
        return await self.finish_sell(self.s.journal.get(tid), stream_epoch=epoch)

    async def _sell_refused(self, exc: Exception) -> None:
        """A leftover sell that was not placed (already in the journal): say so, or wait
        as the exchange told; the next attempt follows."""
        if isinstance(exc, OrderRejected):
            self.s.emit(
                m.ErrorReport(user_id=self.s.user_id, kind="order_rejected", message=str(exc))
            )
        elif isinstance(exc, RateLimited):
            # cut short by "now", and the sale goes on: tokens are never left
            await self.s.life.wait(self.sid, StopMode.NOW, exc.retry_after)

    async def finish_sell(self, row: TradeRow, stream_epoch: int | None = None) -> Fills:
        """Wait for a plain leftover sell, cancel it if it does not fill; its fills."""
        oid = row.working_id
        assert oid is not None
        self.s.track(oid, row.intent_ms, symbol=row.symbol, side="SELL")
        timeout = self.s.tuning.leftover_sell_timeout_seconds
        if timeout is None:
            timeout = self.settings.order_timeout_seconds
        adopted = stream_epoch is None
        st = await self._wait(oid, _is_terminal, timeout, stoppable=False, ask_first=adopted)
        if st is None:
            await self._cancel(oid)
        self.s.untrack(oid)
        fills = await self.s.fills(
            oid, self.market, trust_stream=self._stream_trusted(stream_epoch)
        )
        self.s.tracker.forget(oid)
        fee = fills.fee_usdt
        self.s.journal.record_fills(
            row.id, sell_qty=fills.qty, sell_quote=fills.quote, sell_fee_usdt=fee
        )
        outcome = Outcome.SOLD if fills.qty else Outcome.NO_FILL
        self.s.journal.finish(row.id, outcome, self.s.clock.now_ms())
        return fills


def _add(acc: Fills, f: Fills) -> None:
    acc.qty += f.qty
    acc.quote += f.quote
    acc.fee_base += f.fee_base
    acc.fee_quote += f.fee_quote
    if f.last_ms:
        acc.last_ms = max(acc.last_ms or 0, f.last_ms)
