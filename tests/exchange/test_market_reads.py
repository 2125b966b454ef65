"""AlphaClient's reads for choosing a token and keeping the balance rule: depth, klines,
user-score, asset balances. Real samples through a scripted server (parsing, and refusing
numbers no exchange would send), then against the simulated exchange."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchange import client as C
from exchange.client import AlphaClient
from exchange.errors import BadResponse
from exchange.market_models import eligible_usdt
from exchange.points import mul_point_on
from exchange.sim.testing import SimHarness
from tests.exchange.fakebapi import Reply, envelope, sample
from tests.samples import ASSET_BALANCE_KEYS

D = Decimal


async def test_the_real_samples_parse(client, fake) -> None:
    depth = await client.depth("ALPHA_971USDT", 5)
    assert fake.calls(C.P_DEPTH)[0].query == {"symbol": "ALPHA_971USDT", "limit": "5"}
    # the captured book is crossed for a moment: parsed as it is
    assert (depth.best_bid, depth.best_ask) == (D("0.000005845"), D("0.000005840"))

    (k,) = await client.klines("ALPHA_175USDT", "1h", 1)
    assert fake.calls(C.P_KLINES)[0].query == {
        "symbol": "ALPHA_175USDT",
        "interval": "1h",
        "limit": "1",
    }
    assert (k.open_time, k.close_time, k.trades) == (1752642000000, 1752645599999, 2)
    assert (k.open, k.high, k.close, k.quote_volume) == (
        D("0.00171473"),
        D("0.00172515"),
        D("0.00172515"),
        D("3.05093481"),
    )

    score = await client.user_score()
    assert score.sum_score == D(182) and score.end_datetime == 1752624000000
    assert [d.date for d in score.days][:2] == ["2025-07-16", "2025-07-15"]
    assert score.days[0].alpha_volume_score == D(17)
    assert score.user_spend_list[0].spend_score == D(15)


ASSET_ROWS = [  # values from the source of ASSET_BALANCE_KEYS; unlisted keys are null there
    {
        **dict.fromkeys(ASSET_BALANCE_KEYS),
        "asset": "USDT",
        "assetName": "TetherUS",
        "amount": "1742.31735804",
        "valuationAmount": "1742.31735804",
        "isCexAsset": True,
    },
    {
        **dict.fromkeys(ASSET_BALANCE_KEYS),
        "asset": "BGSC",
        "amount": "8.385",
        "valuationAmount": "0.05948356622071221",
        "isCexAsset": False,
        "coinBusinessType": "ALPHA",
        "chainId": "56",
        "contractAddress": "0xa4b68d48d7bc6f04420e8077e6f74bdef809dea3",
    },
]


async def test_asset_balances(client, fake) -> None:
    fake.on(C.P_BALANCES, Reply(body=envelope(ASSET_ROWS)))
    usdt, bgsc = await client.balances()
    assert fake.calls(C.P_BALANCES)[0].query == {"needAlphaAsset": "1", "quoteAsset": "USDT"}
    assert (usdt.asset, usdt.is_cex_asset, usdt.amount) == ("USDT", True, D("1742.31735804"))
    assert (bgsc.coin_business_type, bgsc.chain_id) == ("ALPHA", "56")
    assert eligible_usdt([usdt, bgsc]) == D("1742.31735804") + D("0.05948356622071221")


def _poke(sample_name: str, path: list, value: object) -> bytes:
    body = json.loads(sample(sample_name))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        (C.P_DEPTH, _poke("full_depth.json", ["data", "bids", 0, 0], "NaN"), "bids[0][0] is NaN"),
        (
            C.P_DEPTH,
            _poke("full_depth.json", ["data", "asks", 0, 1], "-5"),
            "asks[0][1] is negative",
        ),
        (C.P_KLINES, _poke("klines.json", ["data", 0, 4], "1e30"), "data[0][4] is absurdly large"),
        (
            C.P_USER_SCORE,
            _poke("user_score.json", ["data", "list", 1, "alphaVolume"], "Infinity"),
            "list[1].alphaVolume is Infinity",
        ),
        (
            C.P_USER_SCORE,
            _poke("user_score.json", ["data", "list", 0, "totalScore"], "-3"),
            "list[0].totalScore is negative",
        ),
        (
            C.P_BALANCES,
            envelope([{**ASSET_ROWS[0], "valuationAmount": "-1742"}]),
            "data[0].valuationAmount is negative",
        ),
    ],
)
async def test_numbers_no_exchange_would_send_are_refused(client, fake, endpoint, body, field):
    fake.on(endpoint, Reply(body=body))
    call = {
        C.P_DEPTH: lambda: client.depth("ALPHA_971USDT"),
        C.P_KLINES: lambda: client.klines("ALPHA_175USDT"),
        C.P_USER_SCORE: client.user_score,
        C.P_BALANCES: client.balances,
    }[endpoint]
    with pytest.raises(BadResponse) as err:
        await call()
    assert err.value.endpoint == endpoint and field in err.value.message


@pytest.fixture
async def sim():
    async with SimHarness(price_interval=0, spread=None, fill_delay=0) as h:
        yield h


@pytest.fixture
async def alice(sim):
    async with AlphaClient(
        base_url=sim.base_url, credentials=sim.credentials("alice"), retry_base_delay=0
    ) as c:
        yield c


async def test_depth_and_klines_show_the_sims_book(sim, alice) -> None:
    book = (await sim.admin.state())["tokens"]["AOP"]
    depth = await alice.depth("ALPHA_382USDT", 3)
    assert (depth.best_bid, depth.best_ask) == (D(book["bid"]), D(book["ask"]))
    assert len(depth.bids) == len(depth.asks) == 3
    mid = (await alice.ticker("ALPHA_382USDT")).last_price
    assert depth.best_bid < mid < depth.best_ask
    (k,) = await alice.klines("ALPHA_382USDT", "1m", 1)
    assert k.close == mid and k.volume == 0


async def test_token_list_carries_what_predicts_the_multiplier(sim, alice) -> None:
    today = sim.sim.clock.utc_day()
    for t in await alice.token_list():
        assert t.listing_time is not None and t.chain_name
        assert t.mul_point == mul_point_on(today, t.listing_time, t.chain_name, t.chain_id)


async def test_user_score_and_balances_from_the_sim(sim, alice) -> None:
    await sim.admin.set_balance("alice", "USDT", D(10))
    await sim.admin.set_balance("alice", "AOP", D(1000))
    await sim.admin.set_volume("alice", "KOGE", D(2048))
    rows = await alice.balances()
    bid = (await alice.depth("ALPHA_382USDT", 1)).best_bid
    assert {r.asset: r.valuation_amount for r in rows} == {"USDT": D(10), "AOP": 1000 * bid}
    assert eligible_usdt(rows) < 100  # 10 + ~84: today's volume points would be lost

    await sim.admin.set_balance("alice", "USDT", D(400))
    now = sim.sim.clock.time()
    await sim.admin.advance_time(86_400 - now % 86_400 + 1)
    score = await alice.user_score()
    (day,) = score.days
    assert (day.alpha_volume, day.alpha_volume_score, day.balance_score) == (D(2048), 11, 1)
    assert day.balance_snapshot == 400 + 1000 * bid and score.sum_score == 12
