"""Why a user process stops, as exceptions; ``userproc.exits`` maps each to an exit status."""

from __future__ import annotations

from decimal import Decimal


class UserStop(Exception):
    """Base: stop this user with a human ``reason`` (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StopRequested(UserStop):
    """The one way a stop reaches the code that trades: the lifecycle's gate (``to``,
    ``check``) and its waits (``sleep``, ``sleep_unless_now``, ``until``) raise it once a
    stop applies. A drain raises it only where something new would begin (the round trip
    in progress finishes at its planned prices first); "now" also cuts short the waits
    the exchange imposes (Retry-After, retry backoff). Caught where a strategy's loop
    begins (``StrategyRunner.run``); at the process level it is a clean end (``exits``)."""


class ExchangeDown(UserStop):
    pass


class BadReplies(UserStop):
    """The exchange kept answering with numbers that cannot be true (NaN, negative,
    absurd): nothing is decided on them; the reason names the endpoint and the field."""


class StrategyFailed(UserStop):
    """This strategy cannot go on for this user (its token is unknown, the exchange
    refuses its orders' price or amount): it stops; the user's other strategies go on."""


class CostCapReached(UserStop):
    pass


class LowBalance(UserStop):
    """Trading on would leave the account's eligible balance under ``min_balance_usdt`` at
    the end of the UTC day, which then earns no volume points: stop for the day."""


class BadSetup(UserStop):
    pass


class OrdersRejected(StrategyFailed):
    """The exchange keeps refusing our orders (balance, filters ...): the user has to fix
    something; restarting would only be refused again."""


class VolumeNotCounted(StrategyFailed):
    """Batch after batch filled but the exchange's volume for the token did not move:
    trading on would only spend fees."""


class LeftoverError(UserStop):
    """Tokens we bought could not be sold: pause the user, say exactly what is left."""

    def __init__(self, asset: str, token: str, quantity: Decimal) -> None:
        super().__init__(f"{quantity} {token} ({asset}) could not be sold; buying nothing more")
        self.asset = asset
        self.token = token
        self.quantity = quantity


class JournalUnreadable(UserStop):
    """The journal file is corrupt or not a database: never guess what it held."""


class JournalUnusable(UserStop):
    """The journal is sound but cannot be used now (a full disk, an I/O error, another
    program holding it locked): trade nothing until it can; a restart tries again."""
