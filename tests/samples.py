"""The real Binance Alpha samples the models and the simulator are checked against.

A copy lives in the repository (``tests/data/binance-alpha``, with its SOURCES.md) so the
suite runs in any clone; ``shared/`` beside the repository is where new captures arrive,
and ``test_vendored_samples_match_shared`` fails when the two drift apart.
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = _ROOT / "tests" / "data" / "binance-alpha" / "samples"
SHARED_SAMPLES = _ROOT.parent / "shared" / "binance-alpha" / "samples"

# GET /bapi/asset/v2/private/asset-service/wallet/asset?needAlphaAsset=1&quoteAsset=USDT has
# no vendored sample yet: these are the keys of its rows in JustinShi/alpha-new's
# docs/API_REQUESTS_REFERENCE.md ("钱包余额查询", real-looking rows: USDT, SUI, an Alpha
# token BGSC with coinBusinessType "ALPHA").
ASSET_BALANCE_KEYS = frozenset(
    {
        "asset",
        "assetName",
        "amount",
        "logoUrl",
        "valuationAmount",
        "profit",
        "profitRatio",
        "avgCost",
        "avgBuyCost",
        "isCexAsset",
        "coinBusinessType",
        "chainId",
        "contractAddress",
    }
)
