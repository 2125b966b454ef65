"""Every captured Binance Alpha sample decodes with our models.

A new sample without an entry in SAMPLE_MODELS fails the test, so the models cannot fall
behind the captures.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from exchange import market_models as mm
from exchange import models as m
from exchange.untrusted import check_numbers, kind_of
from tests.samples import SAMPLES


def env(tp):
    """Decode a bapi envelope, then its data as ``tp`` the way the client does (number
    checks included); fail if the envelope is not ok."""

    def decode(raw: bytes):
        e = msgspec.json.decode(raw, type=m.Envelope)
        assert e.ok or tp is None, "sample envelope says not ok"
        return e if tp is None else m.decode_data(e.data, tp, "/sample")

    return decode


def plain(tp):
    def decode(raw: bytes):
        value = msgspec.json.decode(raw, type=tp)
        check_numbers(value, "data", kind_of(tp))
        return value

    return decode


SAMPLE_MODELS = {
    "agg_klines_row.json": plain(mm.KlineRow),
    "agg_trade_row.json": plain(mm.AggTrade),
    "aggticker24_koge_aop.json": env(list[m.TokenInfo]),
    "cancel_request.json": plain(m.CancelRequest),
    "cancel_request_sell_2026.json": plain(m.CancelRequest),
    "cancel_response.json": env(None),
    "error_amount_mismatch_000002.json": env(None),
    "error_incorrect_price_481002.json": env(None),
    "error_session_expired.json": env(None),
    "exchange_info.json": env(m.RawExchangeInfo),
    "execution_report.json": plain(m.StreamPush),
    "execution_report_oto_sequence.json": plain(list[m.StreamPush]),
    "fee_rate.json": env(mm.FeeRate),
    "full_depth.json": env(mm.Depth),
    "klines.json": env(list[mm.KlineRow]),
    "limit_order_place_request_amount_mismatch.json": plain(dict),
    "limit_order_place_request_buy.json": plain(dict),
    "limit_order_place_request_buy_2026_b.json": plain(dict),
    "limit_order_place_request_price_off_tick.json": plain(dict),
    "limit_order_place_request_sell_2025.json": plain(dict),
    "limit_order_place_request_sell.json": plain(dict),
    "limit_order_place_response.json": env(str),
    "listen_key.json": env(str),
    "open_orders_empty.json": env(list[m.OpenOrder]),
    "order_history_merge.json": env(list[m.HistoryOrder]),
    "oto_place_request.json": plain(dict),
    "oto_place_response.json": env(m.OtoPlaced),
    "oto_place_response_2.json": env(m.OtoPlaced),
    "oto_place_response_2026_b.json": env(m.OtoPlaced),
    "ticker.json": env(m.Ticker),
    "token_list.json": env(list[m.TokenInfo]),
    "user_score.json": env(mm.UserScore),
    "user_trades.json": env(list[m.UserTrade]),
    "user_volume.json": env(m.RawUserVolume),
    "wallet_alpha.json": env(m.RawWallet),
    "ws_aggtrade.json": plain(mm.Push[mm.AggTrade]),
    "ws_depth_update.json": plain(mm.Push[mm.DepthUpdate]),
    "ws_kline_1s.json": plain(mm.Push[mm.KlineEvent]),
    "ws_public_subscribe_ack.json": plain(m.SubscribeAck),
    "ws_public_subscribe_request.json": plain(m.SubscribeRequest),
    "ws_ticker_list.json": plain(mm.Push[mm.TickerListEvent]),
    "ws_user_subscribe_ack.json": plain(m.SubscribeAck),
    "ws_user_subscribe_request.json": plain(m.SubscribeRequest),
}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_every_sample_has_a_model_and_decodes():
    names = sorted(p.name for p in SAMPLES.glob("*.json"))
    assert names, "no samples found"
    missing = [n for n in names if n not in SAMPLE_MODELS]
    assert not missing, f"samples without a model: {missing}"
    for n in names:
        SAMPLE_MODELS[n](sample(n))


def test_token_list_and_aggticker_give_mulpoint_and_price():
    koge, aop = env(list[m.TokenInfo])(sample("aggticker24_koge_aop.json"))
    assert (koge.symbol, koge.alpha_id, koge.mul_point, koge.chain_name) == (
        "KOGE",
        "ALPHA_22",
        Decimal(1),
        "BSC",
    )
    assert aop.mul_point == Decimal(4)
    assert koge.price == Decimal("48.02764722909907599956")  # exact, no float
    assert koge.pair == "ALPHA_22USDT"


def test_exchange_info_flattens_filters():
    raw = env(m.RawExchangeInfo)(sample("exchange_info.json"))
    info = m.ExchangeInfo([m.SymbolFilters.from_raw(s) for s in raw.symbols])
    koge = info.get("ALPHA_22USDT")
    assert koge.tick_size == Decimal("0.00000001")
    assert koge.step_size == Decimal("0.0001")
    assert koge.min_qty == Decimal("0.0001")
    assert koge.max_qty == Decimal("19909")
    assert koge.min_notional == Decimal("0.1")
    assert koge.max_open_orders == 200
    assert info.get("ALPHA_382").step_size == Decimal("0.01")
    with pytest.raises(KeyError, match="ALPHA_999USDT"):
        info.get("ALPHA_999USDT")


def test_user_volume_per_token_and_absent_token():
    vol = m.UserVolume.from_raw(env(m.RawUserVolume)(sample("user_volume.json")))
    assert vol.total_volume == Decimal("197.43566840519998")
    assert vol.volume_of("AITECH") == Decimal("197.43566840519998")
    assert vol.volume_of("aitech") == Decimal("197.43566840519998")
    assert vol.volume_of("KOGE") == Decimal(0)


def test_oto_ids_become_strings():
    placed = env(m.OtoPlaced)(sample("oto_place_response.json"))
    assert (placed.working_order_id, placed.pending_order_id) == ("176849327", "176849328")


def test_history_rows_normalise_list_id_and_time():
    rows = env(list[m.HistoryOrder])(sample("order_history_merge.json"))
    working, pending, plain_buy, canceled = rows
    assert working.order_list_id == "1393062340" and working.contingency_position == "OTO_WORKING"
    assert pending.contingency_position == "OTO_PENDING" and pending.side == "SELL"
    assert plain_buy.order_list_id is None and plain_buy.time_ms == 1779368143285
    assert working.time_ms == 1779368069148
    assert canceled.status == "CANCELED" and canceled.time_ms is None
    assert pending.executed_qty == Decimal("1686456.3")


def test_execution_report_sequence_decodes_typed():
    pushes = plain(list[m.StreamPush])(sample("execution_report_oto_sequence.json"))
    seq = [(p.data.side, p.data.status) for p in pushes]
    assert seq == [
        ("BUY", "NEW"),
        ("SELL", "PENDING"),
        ("BUY", "FILLED"),
        ("SELL", "NEW"),
        ("SELL", "PARTIALLY_FILLED"),
        ("SELL", "FILLED"),
    ]
    buy_fill = pushes[2].data
    assert buy_fill.order_id == "51481849" and buy_fill.order_list_id == "89863105"
    assert buy_fill.cum_quote == Decimal("197.30724223")
    assert buy_fill.fee == Decimal("0.08695600") and buy_fill.fee_asset == "ALPHA_373"
    assert pushes[1].data.qty == Decimal(0) and pushes[1].data.fee == Decimal(0)
    assert pushes[3].data.qty == Decimal("869.47")


def test_lenient_numbers_ids_and_nulls():
    raw = (
        b'{"orderId": 77, "symbol": "X", "side": "BUY", "status": "NEW", "price": 0.1,'
        b' "origQty": "2", "executedQty": null, "orderListId": -1}'
    )
    o = msgspec.json.decode(raw, type=m.OpenOrder)
    assert o.order_id == "77" and o.price == Decimal("0.1") and o.executed_qty == Decimal(0)
    assert o.order_list_id is None


def test_wallet_rows():
    w = env(m.RawWallet)(sample("wallet_alpha.json"))
    coai = w.items[1]
    assert (coai.asset, coai.symbol, coai.free) == ("ALPHA_391", "COAI", Decimal(250))
