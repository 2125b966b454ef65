"""`run` checks every strategy's token and chain before it trades (issue 20, item 5).

One token-list request, shared by all users, against what ``check --online`` checks
(``config.online.pair_problems``: the same lines, the same did-you-mean). At start
(``check_at_start``, before the supervisor starts): a problem is the operator's, exit 2
with every line. If the exchange does not answer then, ``run`` starts anyway and the
supervisor asks again until it does (``watch_tokens``, off the trading path): each
(strategy, user) pair found wrong then is FATAL with its line (``Fleet.config_fatal``),
and a reload that changes that strategy starts it again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from config.online import Located, fetch_tokens, pair_problems, token_problems
from exchange.errors import ExchangeError

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

log = structlog.get_logger(__name__)
RETRY_SECONDS = (5.0, 10.0, 30.0, 60.0)  # between asks while the exchange does not answer


async def fetch_or_none(config: Any) -> tuple[list[Any] | None, str]:
    """(the token list, "") or (None, why not) within the request timeout."""
    try:
        async with asyncio.timeout(config.exchange.request_timeout_seconds):
            return await fetch_tokens(config.exchange), ""
    except (ExchangeError, OSError, TimeoutError) as exc:
        return None, type(exc).__name__ + (f": {exc}" if str(exc) else "")


def check_at_start(config: Any, config_path: str) -> Located | None:
    """Exit 2 with every problem when the exchange lists a token or chain as wrong; None
    when all is listed; the config's locations (for ``watch_tokens``) when the exchange
    did not answer."""
    from config.output import fail, say

    where = Located(config, config_path)
    tokens, why = asyncio.run(fetch_or_none(config))
    if tokens is None:
        say(
            f"alphavol: note: the exchange did not give its token list ({why}); starting"
            " anyway, tokens and chains are checked when it answers",
            err=True,
        )
        return where
    problems = token_problems(config.effective(), tokens, where)
    for line in problems:
        say(line, err=True)
    if problems:
        fail(f"{len(problems)} problem(s) with tokens or chains; nothing was started")
    return None


async def watch_tokens(arb: Arbiter, where: Located) -> None:
    """Ask for the token list until the exchange answers, then stop the pairs it shows
    wrong (FATAL, with their line)."""
    attempt = 0
    while True:
        tokens, why = await fetch_or_none(arb.config)
        if tokens is not None:
            break
        delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
        log.warning("token_list_unavailable", error=arb.redact(why), retry_in=delay)
        attempt += 1
        await asyncio.sleep(delay)
    found = pair_problems(arb.config.effective(), tokens, where)
    for pair, _loc, line in found:
        log.error(
            "token_check_failed", user_id=pair.user_id, strategy_id=pair.strategy_id, problem=line
        )
        arb.fleet.config_fatal(pair.user_id, pair.strategy_id, line)
    log.info("token_check_done", problems=len(found))
