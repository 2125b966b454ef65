"""Account reads of the sim beyond trading: the Alpha score (``user-score``, real shape in
``user_score.json``) and the balance of every asset with its USDT valuation (the web
app's ``asset-service/wallet/asset``; shape from JustinShi/alpha-new's API reference,
no vendored sample yet). Both value Alpha tokens at their best bid, like the points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from exchange.sim.numbers import plain, trunc8
from exchange.sim.rest import envelope

if TYPE_CHECKING:
    from exchange.sim.engine import SimEngine

USER_SCORE = "/bapi/defi/v1/private/wallet-direct/buw/tge/common/user-score"
ASSET_BALANCES = "/bapi/asset/v2/private/asset-service/wallet/asset"
USDT_LOGO = (
    "https://bin.bnbstatic.com/image/admin_mgs_image_upload/20240508/"
    "6180cdb6-8480-4a3c-a8a9-8a193a89fc5e.png"
)


def _asset_row(**fields: Any) -> dict[str, Any]:
    row = {
        "asset": None,
        "assetName": None,
        "amount": "0",
        "logoUrl": None,
        "valuationAmount": "0",
        "profit": None,
        "profitRatio": None,
        "avgCost": None,
        "avgBuyCost": None,
        "isCexAsset": True,
        "coinBusinessType": None,
        "chainId": None,
        "contractAddress": None,
    }
    row.update(fields)
    return row


class AccountRoutes:
    def __init__(self, engine: SimEngine) -> None:
        self.engine = engine

    def add_to(self, app: web.Application) -> None:
        app.router.add_get(USER_SCORE, self.user_score)
        app.router.add_get(ASSET_BALANCES, self.asset_balances)

    async def user_score(self, request: web.Request) -> web.Response:
        acc = self.engine.authenticate(request.cookies, request.headers)
        return envelope(self.engine.user_score(acc))

    async def asset_balances(self, request: web.Request) -> web.Response:
        """USDT first, then (with ``needAlphaAsset``) each Alpha token held, at its bid."""
        acc = self.engine.authenticate(request.cookies, request.headers)
        usdt = acc.bal("USDT")
        amount = usdt.free + usdt.locked
        rows = [
            _asset_row(
                asset="USDT",
                assetName="TetherUS",
                amount=format(trunc8(amount), "f"),
                logoUrl=USDT_LOGO,
                valuationAmount=plain(amount),
            )
        ]
        if request.query.get("needAlphaAsset", "").lower() in ("1", "true"):
            for t in self.engine.tokens.values():
                b = acc.balances.get(t.alpha_id)
                if b is None or b.free + b.locked == 0:
                    continue
                held = b.free + b.locked
                rows.append(
                    _asset_row(
                        asset=t.symbol,
                        assetName=t.name,
                        amount=plain(held),
                        valuationAmount=plain(held * self.engine.quote(t).bid),
                        isCexAsset=False,
                        coinBusinessType="ALPHA",
                        chainId=t.chain_id,
                        contractAddress=t.contract_address,
                    )
                )
        return envelope(rows)
