"""Public market data of the sim: the order book (``fullDepth``) and candles (``klines``,
``agg-klines``), in the real shapes (``full_depth.json``, ``klines.json``,
``agg_klines_row.json``), showing the same bid/ask the matching engine fills at."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from exchange.sim import codes
from exchange.sim.book import INTERVAL_MS, Bar, depth_levels
from exchange.sim.numbers import s8
from exchange.sim.rest import PUBLIC, envelope
from exchange.sim.universe import TokenSpec

if TYPE_CHECKING:
    from exchange.sim.engine import SimEngine

FULL_DEPTH = f"{PUBLIC}/alpha-trade/fullDepth"
KLINES = f"{PUBLIC}/alpha-trade/klines"
AGG_KLINES = f"{PUBLIC}/alpha-trade/agg-klines"
DEPTH_DEFAULT, DEPTH_MAX = 100, 1000
KLINES_DEFAULT, KLINES_MAX = 500, 1000


def _fixed(d: Decimal, step: Decimal) -> str:
    """A number with exactly the decimals of its tick or lot step (``"0.000005845"``)."""
    return format(d.quantize(step.normalize()) if step < 1 else d.quantize(Decimal(1)), "f")


def _n8(d: Decimal) -> str:
    return "0.00000000" if d == 0 else s8(d)


def _ohlc(bar: Bar, interval: int, price, volume) -> list:
    """``[openTime, open, high, low, close, volume, closeTime]``, times as strings."""
    return [
        str(bar.open_ms),
        *(price(p) for p in (bar.open, bar.high, bar.low, bar.close)),
        volume(bar.volume),
        str(bar.open_ms + interval - 1),
    ]


def _int_param(request: web.Request, name: str, default: int, top: int) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise codes.bad_param(name) from exc
    if value < 1:
        raise codes.bad_param(name)
    return min(value, top)


def _interval(request: web.Request) -> int:
    ms = INTERVAL_MS.get(request.query.get("interval", ""))
    if ms is None:
        raise codes.bad_param(f"interval (one of {', '.join(INTERVAL_MS)})")
    return ms


class MarketRoutes:
    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine
        self._update_ids = itertools.count(59_174_970_591)

    def add_to(self, app: web.Application) -> None:
        app.router.add_get(FULL_DEPTH, self.full_depth)
        app.router.add_get(KLINES, self.klines)
        app.router.add_get(AGG_KLINES, self.agg_klines)

    async def full_depth(self, request: web.Request) -> web.Response:
        t = self.engine.token(request.query.get("symbol", ""))
        limit = _int_param(request, "limit", DEPTH_DEFAULT, DEPTH_MAX)
        bids, asks = depth_levels(
            self.engine.quote(t), t.tick_size, t.step_size, t.depth_usdt, limit
        )
        now = self.engine.now_ms()
        return envelope(
            {
                "lastUpdateId": next(self._update_ids),
                "symbol": t.pair,
                "bids": [[_fixed(p, t.tick_size), _fixed(q, t.step_size)] for p, q in bids],
                "asks": [[_fixed(p, t.tick_size), _fixed(q, t.step_size)] for p, q in asks],
                "E": now,
                "T": now,
            }
        )

    def _bars(self, t: TokenSpec, request: web.Request) -> tuple[int, list[Bar]]:
        interval = _interval(request)
        limit = _int_param(request, "limit", KLINES_DEFAULT, KLINES_MAX)
        return interval, self.engine.klines.bars(t.alpha_id, interval, limit, self.engine.now_ms())

    async def klines(self, request: web.Request) -> web.Response:
        """``GET .../klines?symbol=ALPHA_22USDT&interval=1h&limit=N`` (the official API)."""
        t = self.engine.token(request.query.get("symbol", ""))
        interval, bars = self._bars(t, request)
        rows = [
            [
                *_ohlc(b, interval, s8, _n8),
                _n8(b.quote_volume),
                str(b.trades),
                _n8(b.volume),  # taker volume: the sim does not tell takers apart
                _n8(b.quote_volume),
                0,
            ]
            for b in bars
        ]
        return envelope(rows)

    async def agg_klines(self, request: web.Request) -> web.Response:
        """``GET .../agg-klines?chainId=56&tokenAddress=0x..&interval=1h&limit=N`` (the web
        page's aggregated candles, looked up by chain and contract)."""
        q = request.query
        address = q.get("tokenAddress", "").lower()
        chain = q.get("chainId", "")
        t = next(
            (
                t
                for t in self.engine.tokens.values()
                if (t.contract_address or "").lower() == address and t.chain_id == chain
            ),
            None,
        )
        if t is None:
            raise codes.SimError(codes.UNKNOWN_SYMBOL, "Invalid symbol.")
        interval, bars = self._bars(t, request)
        rows = [_ohlc(b, interval, str, str) for b in bars]
        return envelope({"klineInfos": rows})
