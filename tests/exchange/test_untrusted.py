"""Hostile numbers in replies are BadResponse naming the endpoint and the field.

The replies are real samples with one number rewritten as a hostile server would write it
(bare ``NaN`` tokens included), served over a real socket by the scripted bapi server.
The same checks through a rewriting proxy in front of the sim: tests/exchange/test_hostile.py.
"""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec
import pytest

from exchange import client as C
from exchange import market_models as mm
from exchange import models as m
from exchange import untrusted as u
from exchange.errors import BadResponse, OutcomeUnknown
from exchange.ordermath import plan_oto
from tests.exchange.fakebapi import Reply, sample
from tests.exchange.test_client import KOGE

# reply models built by us, not decoded from the exchange
NOT_FROM_THE_EXCHANGE = {
    m.OtoOrderRequest,
    m.LimitOrderRequest,
    m.SymbolFilters,
    m.UserVolume,
    m.ExchangeInfo,
}


def test_every_decimal_field_of_a_reply_model_has_a_number_kind():
    structs = [
        v
        for module in (m, mm)
        for v in vars(module).values()
        if isinstance(v, type)
        and issubclass(v, msgspec.Struct)
        and v.__module__ == module.__name__
        and v not in NOT_FROM_THE_EXCHANGE
    ]
    missing = []
    for cls in structs:
        for f in msgspec.structs.fields(cls):
            if "Decimal" in repr(f.type) and u.kind_of(f.type) is None:
                missing.append(f"{cls.__name__}.{f.name}")
    assert structs and not missing


def rewrite(sample_name: str, pattern: str, replacement: str) -> bytes:
    """The sample with the first match of ``pattern`` (a regex on the raw text) replaced."""
    text = sample(sample_name).decode()
    new, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1, pattern
    return new.encode()


VOLUME = r'"volume": 197\.43566840519998'
HOSTILE = [
    ('"volume": NaN', "is NaN"),
    ('"volume": "NaN"', "is NaN"),
    ('"volume": "sNaN"', "is sNaN"),
    ('"volume": Infinity', "is Infinity"),
    ('"volume": "-Infinity"', "is -Infinity"),
    ('"volume": 1e999', "is absurdly large"),
    ('"volume": 1e999999999', "is absurdly large"),  # beyond Decimal's default Emax
    ('"volume": "1E+16"', "is absurdly large"),
    ('"volume": -500', "is negative (-500)"),
]


@pytest.mark.parametrize(("written", "problem"), HOSTILE)
async def test_hostile_user_volume_names_endpoint_and_field(client, fake, written, problem):
    fake.on(C.P_USER_VOLUME, Reply(body=rewrite("user_volume.json", VOLUME, written)))
    with pytest.raises(BadResponse) as e:
        await client.user_volume()
    assert e.value.message.startswith(
        f"user-volume: data.tradeVolumeInfoList[AITECH].volume {problem}"
    )
    assert e.value.endpoint == C.P_USER_VOLUME
    assert len(fake.calls(C.P_USER_VOLUME)) == 1  # a bad reply is not retried


@pytest.mark.parametrize(
    ("path", "name", "call", "pattern", "written", "field"),
    [
        (
            C.P_TOKEN_LIST,
            "aggticker24_koge_aop.json",
            lambda c: c.token_list(),
            r'"mulPoint": 4',
            '"mulPoint": -4',
            "token/list: data[AOP].mulPoint is negative (-4)",
        ),
        (
            C.P_TOKEN_LIST,
            "aggticker24_koge_aop.json",
            lambda c: c.token("AOP"),
            r'"mulPoint": 4',
            '"mulPoint": 400',
            "token/list: data[AOP].mulPoint is absurdly large (400; a mulPoint is below 100)",
        ),
        (
            C.P_TICKER,
            "ticker.json",
            lambda c: c.ticker("ALPHA_175USDT"),
            r'"lastPrice": "0\.00171695"',
            '"lastPrice": Infinity',
            "ticker: data.lastPrice is Infinity",
        ),
        (
            C.P_TICKER,
            "ticker.json",
            lambda c: c.ticker("ALPHA_175USDT"),
            r'"lastPrice": "0\.00171695"',
            '"lastPrice": "2e12"',
            "ticker: data.lastPrice is absurdly large (2E+12; a price is below 1E+12)",
        ),
        (
            C.P_EXCHANGE_INFO,
            "exchange_info.json",
            lambda c: c.exchange_info(),
            r'"tickSize": "[^"]*"',
            '"tickSize": NaN',
            "get-exchange-info: data.symbols[ALPHA_22USDT].filters[PRICE_FILTER].tickSize is NaN",
        ),
        (
            C.P_USER_TRADES,
            "user_trades.json",
            lambda c: c.user_trades("2466831", "ALPHA_971USDT"),
            r'"commission": "0\.00027268"',
            '"commission": "-0.1"',
            "get-user-trades: data[2466831].commission is negative (-0.1)",
        ),
        (
            C.P_HISTORY,
            "order_history_merge.json",
            lambda c: c.order_history(start_ms=0, end_ms=1),
            r'"orderId": "?\d+"?',
            '"orderId": "12ab"',
            "get-order-history-merge: data[12ab].orderId is not an id ('12ab')",
        ),
        (
            C.P_WALLET,
            "wallet_alpha.json",
            lambda c: c.wallet(),
            r'"free": "250"',
            '"free": 1e999',
            "cloud-wallet/alpha: data.list[COAI].free is absurdly large",
        ),
    ],
)
async def test_hostile_numbers_elsewhere_name_endpoint_and_field(
    client, fake, path, name, call, pattern, written, field
):
    fake.on(path, Reply(body=rewrite(name, pattern, written)))
    with pytest.raises(BadResponse) as e:
        await call(client)
    assert e.value.message.startswith(field), e.value.message


async def test_a_wrong_type_names_the_field_too(client, fake):
    fake.on(C.P_USER_VOLUME, Reply(body=rewrite("user_volume.json", VOLUME, '"volume": true')))
    with pytest.raises(BadResponse) as e:
        await client.user_volume()
    assert e.value.message.startswith("user-volume: data.tradeVolumeInfoList[0].volume: Expected")


async def test_hostile_order_ids_make_the_outcome_unknown_not_a_lie(client, fake):
    body = rewrite("oto_place_response.json", r'"workingOrderId": \d+', '"workingOrderId": -7')
    fake.on(C.P_OTO_PLACE, Reply(body=body))
    with pytest.raises(OutcomeUnknown) as e:
        await client.place_oto(plan_oto(KOGE, Decimal("48"), Decimal("47"), Decimal("10")))
    assert "workingOrderId is negative (-7)" in e.value.message


def test_limits_are_documented_in_one_place():
    doc = u.__doc__ or ""
    kinds = [v for v in vars(u).values() if isinstance(v, u.Kind)]
    assert len(kinds) == 10
    for k in kinds:
        name = next(n for n, v in vars(u).items() if v is k)
        assert name in doc
