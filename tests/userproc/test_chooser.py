"""``target_token: auto``'s choice, from the exchange's public figures alone: the token with
the lowest (spread + fees + expected adverse move) / mulPoint, never one that is not
trading, off the filters, or too volatile for the guard; and the books of tokens that
cannot win are not even read."""

from __future__ import annotations

from decimal import Decimal as D

from exchange.market_models import Depth, Kline
from exchange.models import SymbolFilters, TokenInfo
from userproc.chooser import (
    FEE_PER_SIDE,
    Listed,
    Prefs,
    choose,
    estimate,
    moved_percentage,
    volatility,
)


def listed(symbol: str, mul: int, *, chain="BSC", status="TRADING", offline=False, offsell=False):
    token = TokenInfo(
        alpha_id=f"ALPHA_{symbol}",
        symbol=symbol,
        chain_name=chain,
        mul_point=D(mul),
        offline=offline,
        offsell=offsell,
    )
    filters = SymbolFilters(symbol=token.pair, base_asset=token.alpha_id, status=status)
    return Listed(token, filters)


def book(mid: str, spread_bp: str) -> Depth:
    m, half = D(mid), D(mid) * D(spread_bp) / 20000
    return Depth(bids=[(m - half, D(100))], asks=[(m + half, D(100))])


def bar(low: str, high: str) -> Kline:
    lo, hi = D(low), D(high)
    return Kline(open_time=0, open=lo, high=hi, low=lo, close=hi, volume=D(1), close_time=59999)


CALM = [bar("1", "1")]


class Market:
    """What the exchange's public endpoints would answer, per symbol; counts the reads."""

    def __init__(self, books: dict[str, Depth], candles: dict[str, list[Kline]] | None = None):
        self.books = books
        self.candles = candles or {}
        self.read: list[str] = []

    async def fetch(self, item: Listed) -> tuple[Depth, list[Kline]]:
        self.read.append(item.symbol)
        return self.books[item.symbol], self.candles.get(item.symbol, CALM)


async def test_cheapest_per_credited_usdt_wins_and_the_cost_is_spread_plus_fees_over_mul() -> None:
    tokens = [listed("KOGE", 1), listed("AOP", 4), listed("WIDE", 4), listed("TINY", 2)]
    mkt = Market(
        {
            "KOGE": book("48", "2"),  # (2 + 2) / 1 = 4 bp
            "AOP": book("0.08", "6"),  # (6 + 2) / 4 = 2 bp
            "WIDE": book("0.2", "30"),  # (30 + 2) / 4 = 8 bp
            "TINY": book("0.00001", "5"),  # (5 + 2) / 2 = 3.5 bp
        }
    )
    choice = await choose(tokens, mkt.fetch, Prefs())
    assert choice.best is not None and choice.best.symbol == "AOP"
    assert abs(choice.best.cost_per_credit - D("0.0002")) < D("0.0000001")
    assert choice.best.fees == 2 * FEE_PER_SIDE
    costs = {e.symbol: round(e.cost_per_credit * 10000, 4) for e in choice.considered}
    assert costs["AOP"] < costs.get("TINY", D(99)) and "bp per credited USDT" in (
        choice.best.describe()
    )


async def test_a_narrow_x1_token_beats_a_wide_x4_one() -> None:
    tokens = [listed("KOGE", 1), listed("COAI", 4)]
    mkt = Market({"KOGE": book("48", "1"), "COAI": book("0.19", "25")})
    choice = await choose(tokens, mkt.fetch, Prefs())
    assert choice.best is not None and choice.best.symbol == "KOGE"  # 3 bp vs 6.75 bp


async def test_tokens_that_cannot_or_may_not_be_traded_are_skipped_with_a_reason() -> None:
    tokens = [
        listed("BRK", 4, status="BREAK"),
        listed("GONE", 4, status="DELISTED", offline=True, offsell=True),
        listed("OFF", 4, offline=True),
        listed("SOL", 4, chain="Solana"),
        listed("OLD", 1),
        listed("WIDE", 4),
        listed("JUMPY", 4),
        listed("EMPTY", 4),
        listed("OK", 4),
    ]
    mkt = Market(
        {
            "WIDE": book("1", "80"),
            "JUMPY": book("1", "1"),
            "EMPTY": Depth(bids=[], asks=[(D(1), D(1))]),
            "OK": book("1", "10"),
        },
        {"JUMPY": [bar("1.00", "1.08")]},  # 8 % within the guard's window
    )
    prefs = Prefs(
        chains=("BSC",),
        min_mul_point=D(2),
        max_spread_percentage=D("0.5"),
        max_moved_percentage=D(5),
        candidates=(
            "BRK",
            "GONE",
            "OFF",
            "SOL",
            "OLD",
            "WIDE",
            "JUMPY",
            "EMPTY",
            "OK",
            "NOPE",
        ),
    )
    choice = await choose(tokens, mkt.fetch, prefs)
    assert choice.best is not None and choice.best.symbol == "OK"
    why = {s.symbol: s.reason for s in choice.skipped}
    assert why["BRK"] == "not trading (BREAK)"
    assert why["GONE"].startswith("not trading (DELISTED)")
    assert why["OFF"] == "not trading (offline)"
    assert why["SOL"].startswith("on Solana")
    assert why["OLD"].startswith("mulPoint 1 under min_mul_point 2")
    assert why["WIDE"].startswith("spread 0.8000% over max_spread_percentage 0.5")
    assert why["JUMPY"].startswith("too volatile: moved 8.00%")
    assert why["EMPTY"].startswith("no order book")
    assert why["NOPE"] == "not in the token list"
    assert set(mkt.read) <= {"WIDE", "JUMPY", "EMPTY", "OK"}  # never read what is off


async def test_nothing_to_trade_says_why() -> None:
    choice = await choose([listed("BRK", 4, status="BREAK")], Market({}).fetch, Prefs())
    assert choice.best is None
    assert choice.why_none() == "no token to trade: BRK: not trading (BREAK)"


async def test_books_of_tokens_whose_fees_alone_cost_more_are_not_read() -> None:
    # AOP x4 at 1 bp costs 0.75 bp per credited USDT; an x1 token's fees alone are 2 bp
    tokens = [listed("KOGE", 1), listed("BR", 1), listed("AOP", 4)]
    mkt = Market({"KOGE": book("48", "1"), "BR": book("0.07", "1"), "AOP": book("0.08", "1")})
    choice = await choose(tokens, mkt.fetch, Prefs())
    assert choice.best is not None and choice.best.symbol == "AOP"
    assert mkt.read == ["AOP"]


async def test_the_current_token_stays_unless_another_is_clearly_cheaper() -> None:
    tokens = [listed("AOP", 4), listed("LIGHT", 4)]
    near = Market({"AOP": book("0.08", "2.1"), "LIGHT": book("0.85", "2")})
    kept = await choose(tokens, near.fetch, Prefs(), current="AOP")
    assert kept.best is not None and kept.best.symbol == "AOP" and kept.kept
    far = Market({"AOP": book("0.08", "6"), "LIGHT": book("0.85", "1")})
    moved = await choose(tokens, far.fetch, Prefs(), current="AOP")
    assert moved.best is not None and moved.best.symbol == "LIGHT" and not moved.kept


async def test_in_the_traded_basis_the_multiplier_does_not_pay() -> None:
    tokens = [listed("KOGE", 1), listed("AOP", 4)]
    mkt = Market({"KOGE": book("48", "2"), "AOP": book("0.08", "6")})
    choice = await choose(tokens, mkt.fetch, Prefs(basis="traded"))
    assert choice.best is not None and choice.best.symbol == "KOGE"


def test_a_volatile_token_costs_more_by_its_expected_adverse_move() -> None:
    item = listed("AOP", 4)
    calm = estimate(item, book("1", "4"), [bar("1", "1")] * 5, Prefs())
    wild = estimate(item, book("1", "4"), [bar("1", "1.01")] * 5, Prefs())
    assert not isinstance(calm, str) and not isinstance(wild, str)
    assert calm.adverse == 0 and wild.adverse > 0
    assert wild.cost_per_credit > calm.cost_per_credit
    # sigma per sqrt(s) of 1 % bars: ln(1.01) / sqrt(4 ln 2) / sqrt(60)
    assert abs(volatility([bar("1", "1.01")]) - D("0.000771")) < D("0.000001")
    assert moved_percentage([bar("1", "1.02"), bar("1", "1.01")], 1) == D(1)
