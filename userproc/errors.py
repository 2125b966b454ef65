"""Why a user process stops, as exceptions the runner maps to exit statuses."""

from __future__ import annotations

from decimal import Decimal

from protocol.exitcodes import Exit


class UserStop(Exception):
    """Base: stop this user with ``exit`` and a human ``reason`` (never a secret)."""

    exit: Exit = Exit.CRASH

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StopInterrupted(UserStop):
    """A stop "now" came while the exchange made us wait (Retry-After, retry backoff):
    stop at once instead of waiting; what is still open is cancelled on the way out (best
    effort) or left in the journal for the next start to reconcile."""

    exit = Exit.OK


class ExchangeDown(UserStop):
    exit = Exit.EXCHANGE_DOWN


class BadReplies(UserStop):
    """The exchange kept answering with numbers that cannot be true (NaN, negative,
    absurd): nothing is decided on them; the reason names the endpoint and the field."""

    exit = Exit.BAD_REPLY


class StrategyFailed(UserStop):
    """This strategy cannot go on for this user (its token is unknown, the exchange
    refuses its orders' price or amount): it stops; the user's other strategies go on."""

    exit = Exit.BAD_CONFIG


class CostCapReached(UserStop):
    exit = Exit.COST_CAP


class LowBalance(UserStop):
    """Trading on would leave the account's eligible balance under ``min_balance_usdt`` at
    the end of the UTC day, which then earns no volume points: stop for the day."""

    exit = Exit.LOW_BALANCE


class BadSetup(UserStop):
    exit = Exit.BAD_CONFIG


class OrdersRejected(StrategyFailed):
    """The exchange keeps refusing our orders (balance, filters ...): the user has to fix
    something; restarting would only be refused again."""

    exit = Exit.BAD_CONFIG


class VolumeNotCounted(StrategyFailed):
    """Batch after batch filled but the exchange's volume for the token did not move:
    trading on would only spend fees."""

    exit = Exit.BAD_CONFIG


class LeftoverError(UserStop):
    """Tokens we bought could not be sold: pause the user, say exactly what is left."""

    exit = Exit.LEFTOVER

    def __init__(self, asset: str, token: str, quantity: Decimal) -> None:
        super().__init__(f"{quantity} {token} ({asset}) could not be sold; buying nothing more")
        self.asset = asset
        self.token = token
        self.quantity = quantity


class JournalUnreadable(UserStop):
    """The journal file is corrupt or not a database: never guess what it held."""

    exit = Exit.BAD_CONFIG
