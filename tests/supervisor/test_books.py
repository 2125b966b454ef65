"""The books after a real run on the simulated exchange: `alphavol history` against the
sim's own record (its orders, balances and reported volumes)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

from tests.supervisor.harness import Deployment, strategy
from tests.supervisor.test_real_users import FAST

OWNERS = {"1": "books-owner-one", "2": "books-owner-two"}
TOKENS = {"1": "KOGE", "2": "AOP"}  # AOP counts x4 (mulPoint) in the sim's universe
KEYS = {
    "user_id",
    "day",
    "token",
    "round_trips",
    "bought_usdt",
    "credited_volume",
    "points",
    "cost_usdt",
    "cost_per_point",
}


def sim_bought(account: dict) -> Decimal:
    """USDT the sim's BUY fills took from the account."""
    return sum(
        (Decimal(o["cum_quote"]) for o in account["orders"] if o["side"] == "BUY"), Decimal(0)
    )


async def test_history_equals_the_sims_record(deploy, sim):
    d: Deployment = deploy()
    d.store({u: sim.credentials(a) for u, a in OWNERS.items()})
    d.write_config(
        [
            strategy("koge", ["1"], target=200, amount=10),
            strategy("aop", ["2"], target=300, amount=15, token="AOP"),
        ]
    )
    d.start(child=None, ALPHAVOL_TUNING=FAST)
    assert await d.wait_exit(60) == 0, d.diagnose()
    today = datetime.now(tz=UTC).date().isoformat()

    res = await d.acli("history", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    offline = json.loads((await d.acli("history", "--json", "--offline")).stdout)
    starting = Decimal(sim.sim.starting_usdt)
    for user, account in OWNERS.items():
        a = await sim.admin.account(account)
        (row,) = [r for r in rows if r["user_id"] == user]
        assert KEYS <= set(row)
        assert (row["day"], row["token"]) == (today, TOKENS[user])
        assert row["round_trips"] == a["oto_count"] > 0
        assert Decimal(row["bought_usdt"]) == sim_bought(a)
        usdt = a["balances"]["USDT"]
        lost = starting - Decimal(usdt["free"]) - Decimal(usdt["locked"])
        assert abs(Decimal(row["cost_usdt"]) - lost) <= Decimal("1e-8"), (row, lost)
        reported = Decimal(a["volume_today"][TOKENS[user]])
        assert Decimal(row["credited_volume"]) == reported
        assert row["points"] == math.floor(math.log2(reported))
        assert Decimal(row["cost_per_point"]) == (lost / row["points"]).quantize(Decimal("1e-8"))
        assert row["exchange_points"] is None  # user-score lists closed days only
        # without asking the exchange: the supervisor's own last reading of the day
        (off,) = [r for r in offline if r["user_id"] == user]
        assert off["volume_from"] == "recorded" and row["volume_from"] == "exchange"
        assert Decimal(off["credited_volume"]) == reported
    assert Decimal(rows[1]["credited_volume"]) >= 4 * Decimal(rows[1]["bought_usdt"]) * Decimal(
        "0.99"
    )  # AOP's volume is credited x4

    one = json.loads((await d.acli("history", "--json", "--user", "2")).stdout)
    assert [r["user_id"] for r in one] == ["2"]
    text = await d.acli("history", "--offline")
    assert text.returncode == 0, text.stderr
    assert "user 1" in text.stdout and "user 2" in text.stdout
    assert "last 15 days" in text.stdout and "per point" in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    missing = await d.acli("history", "--user", "9")
    assert missing.returncode == 1 and "user 9" in missing.stderr
