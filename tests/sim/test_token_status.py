"""A token that stops trading: BREAK takes no new buys but lets holders sell, DELISTED
takes nothing; the token list and exchange info say so."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.sim.conftest import oto_body

AOP_OTO = oto_body("ALPHA_382", price="0.09", qty="200", pending="0.08")


def aop_limit(side: str, price: str = "0.08", qty: str = "100") -> dict:
    amount = str(Decimal(price) * Decimal(qty)) if side == "BUY" else qty
    return {
        "baseAsset": "ALPHA_382",
        "quoteAsset": "USDT",
        "side": side,
        "price": price,
        "quantity": qty,
        "paymentDetails": [{"amount": amount, "paymentWalletType": "CARD"}],
    }


async def listed(alice) -> tuple[dict, str]:
    token = next(t for t in (await alice.get("token_list"))["data"] if t["symbol"] == "AOP")
    info = (await alice.get("exchange_info"))["data"]["symbols"]
    return token, next(s["status"] for s in info if s["symbol"] == "ALPHA_382USDT")


async def test_break_then_delisted_then_trading_again(harness, alice) -> None:
    await harness.admin.set_balance("alice", "AOP", Decimal(500))
    await harness.admin.set_token("AOP", status="BREAK")
    token, status = await listed(alice)
    assert (token["offline"], token["offsell"], status) == (True, False, "BREAK")
    refused = await alice.post("oto", AOP_OTO)
    assert refused["success"] is False and "not trading" in refused["message"]
    assert (await alice.post("limit", aop_limit("BUY")))["success"] is False
    assert (await alice.post("limit", aop_limit("SELL")))["success"] is True  # holders can sell

    await harness.admin.set_token("AOP", status="DELISTED")
    token, status = await listed(alice)
    assert (token["offline"], token["offsell"], status) == (True, True, "DELISTED")
    assert (await alice.post("limit", aop_limit("SELL")))["success"] is False

    await harness.admin.set_token("AOP", status="TRADING")
    token, status = await listed(alice)
    assert (token["offline"], token["offsell"], status) == (False, False, "TRADING")
    assert (await alice.post("oto", AOP_OTO))["success"] is True
    with pytest.raises(ValueError, match="status must be one of"):
        await harness.admin.set_token("AOP", status="HALTED")
