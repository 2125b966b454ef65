"""The wire protocol, in one place.

Three conversations, all msgpack-encoded tagged Structs (the ``type`` field names the
message). Each direction has its own union below and its own decoder (``protocol.codec``),
so a socket decodes only the messages meant for it:

* user process -> supervisor (DEALER -> ROUTER, routing id = user id): ``Hello`` first on
  every (re)connect, then events. Every event carries the process's own ``seq``,
  increasing from 1 per process start, so the supervisor can see gaps and restarts.
* supervisor -> user process (same socket pair): ``Ping`` heartbeats (a process that hears
  none for ``HEARTBEAT_TIMEOUT`` seconds stops trading as "now"), ``Drain``, ``StopNow``
  and ``UpdateSettings``.
* CLI -> supervisor (DEALER/REQ -> ROUTER control socket): one request, one reply.

Phases, states, bases and error kinds are ``Literal`` strings (``protocol.vocab``).

Money is ``Decimal`` (sent as strings); times are epoch seconds as floats.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from config.settings import EffectiveSettings
from protocol.vocab import ErrorKind, RowPhase, RowState, SupervisorPhase, UserPhase, VolumeBasis

PROTOCOL_VERSION = 1

HEARTBEAT_INTERVAL = 1.0  # supervisor -> child Ping period, seconds
# A child gives up on its supervisor after this long without a Ping. It is the backstop
# for a supervisor that is alive but hung: a dead one is noticed at once (the kernel's
# parent-death signal and the closed event socket). Long enough that a supervisor short
# of CPU behind hundreds of busy children is not taken for a hung one.
HEARTBEAT_TIMEOUT = 10.0


class Msg(msgspec.Struct, tag_field="type", tag=True, kw_only=True, omit_defaults=True):
    """Base of every message."""


# --------------------------------------------------------------------------------------
# user process -> supervisor
# --------------------------------------------------------------------------------------


class Event(Msg, kw_only=True):
    user_id: str
    seq: int = 0
    at: float = 0.0


class Hello(Event, kw_only=True):
    """First message on every connect; ``restarts`` is how often this user was restarted."""

    pid: int
    protocol_version: int = PROTOCOL_VERSION


class PhaseChanged(Event, kw_only=True):
    """The user process's own phase (see ``userproc.states``) changed."""

    phase: UserPhase
    strategy_id: str | None = None
    reason: str | None = None


class VolumeChecked(Event, kw_only=True):
    strategy_id: str
    token: str
    current: Decimal
    target: Decimal
    basis: VolumeBasis
    mul_point: Decimal | None = None


class BatchPlanned(Event, kw_only=True):
    strategy_id: str
    batch: int  # 1-based batch number of this run
    loops: int
    remaining: Decimal
    credit_per_trade: Decimal
    learned: bool = False  # credit learned from the exchange's own figures


class TokenChosen(Event, kw_only=True):
    """``target_token: auto`` chose the token of the next batch (made before every batch
    and every new day): what it costs per credited USDT, by the exchange's public book."""

    strategy_id: str
    token: str  # plain symbol, e.g. LIGHT
    mul_point: Decimal
    cost_per_credit: Decimal  # expected USDT lost per credited USDT of volume
    previous: str | None = None  # the token it switched from (None: first choice, or kept)


class OrderUpdate(Event, kw_only=True):
    """An order of ours changed status (coalescible: only the latest per order matters)."""

    strategy_id: str | None
    order_id: str
    symbol: str
    side: str
    status: str
    filled_qty: Decimal = Decimal(0)
    filled_quote: Decimal = Decimal(0)


class TradeDone(Event, kw_only=True):
    strategy_id: str
    batch: int
    index: int  # i of i/N within the batch
    loops: int  # N
    buy_quote: Decimal  # USDT paid for the buy
    sell_quote: Decimal  # USDT received for the sell
    credit: Decimal  # volume the trade is expected to add, in the strategy's basis
    cost: Decimal  # quote paid - quote received + fees, in USDT
    cost_today: Decimal
    buy_fill_seconds: float | None = None
    sell_fill_seconds: float | None = None


class Leftover(msgspec.Struct, kw_only=True):
    asset: str  # e.g. ALPHA_22
    token: str  # e.g. KOGE
    quantity: Decimal
    value_usdt: Decimal | None = None  # at the market, when known


class ErrorReport(Event, kw_only=True):
    kind: ErrorKind
    message: str
    fatal: bool = False
    strategy_id: str | None = None


class StrategySummary(msgspec.Struct, kw_only=True):
    strategy_id: str
    token: str
    basis: VolumeBasis
    start_volume: Decimal | None = None
    final_volume: Decimal | None = None
    target: Decimal
    trades: int = 0
    cost: Decimal = Decimal(0)
    reached: bool = False
    error: str | None = None  # why this strategy stopped for this user (the others went on)
    dust: Leftover | None = None  # token too little to sell, kept after the strategy's sweep


class Summary(Event, kw_only=True):
    """Last message of a process: what it did and what it leaves behind."""

    exit_code: int
    reason: str
    strategies: list[StrategySummary] = []
    open_orders: int = 0
    leftovers: list[Leftover] = []
    cost_today: Decimal = Decimal(0)
    seconds: float = 0.0


# --------------------------------------------------------------------------------------
# supervisor -> user process
# --------------------------------------------------------------------------------------


class Command(Msg, kw_only=True):
    pass


class SpentElsewhere(msgspec.Struct, frozen=True, kw_only=True):
    """On a node of a pool: what this user's round trips cost on ``day`` on the other
    nodes (the shared books), so that ``max_daily_cost_usdt`` caps its whole day."""

    day: str
    cost_usdt: Decimal


class Ping(Command, kw_only=True):
    at: float = 0.0
    # a pool (store:, issue 22): place nothing after this CLOCK_MONOTONIC time unless a
    # later Ping moves it (the node's lease is valid well beyond it); past it, stop now
    trade_until: float | None = None
    # a pool: the user's day so far on other nodes (None: not a pool, or not read yet)
    spent_elsewhere: SpentElsewhere | None = None


class Drain(Command, kw_only=True):
    """Finish the round trip in progress, then exit (cancel and sell after stop_grace).
    Idempotent: the supervisor re-sends it with its heartbeats. ``strategy_id``: only
    that strategy of the user (None: the whole process)."""

    strategy_id: str | None = None


class StopNow(Command, kw_only=True):
    """Cancel open orders, sell leftovers, exit (``strategy_id``: only that strategy)."""

    strategy_id: str | None = None


class UpdateSettings(Command, kw_only=True):
    """The user's new effective settings, one per strategy; apply from the next batch."""

    settings: list[EffectiveSettings]


# --------------------------------------------------------------------------------------
# CLI -> supervisor control socket
# --------------------------------------------------------------------------------------


class Request(Msg, kw_only=True):
    pass


class StatusRequest(Request, kw_only=True):
    pass


class StopRequest(Request, kw_only=True):
    strategy_id: str | None = None
    user_id: str | None = None
    now: bool = False


class StartRequest(Request, kw_only=True):
    strategy_id: str | None = None
    user_id: str | None = None


class ReloadRequest(Request, kw_only=True):
    pass


class ShutdownRequest(Request, kw_only=True):
    now: bool = False


class Reply(Msg, kw_only=True):
    pass


class OkReply(Reply, kw_only=True):
    message: str = ""


class ErrorReply(Reply, kw_only=True):
    message: str


class UserStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    user_id: str
    strategy_id: str
    # PENDING STARTING RUNNING BACKOFF DONE STOPPING STOPPED FATAL SKIPPED, and QUEUED: a
    # strategy waiting its turn in its user's running process (which works on another)
    state: RowState
    phase: RowPhase | None = None
    pid: int | None = None
    restarts: int = 0
    current_volume: Decimal | None = None
    start_volume: Decimal | None = None
    target_volume: Decimal
    basis: VolumeBasis = "reported"
    batch: int = 0
    trade_index: int = 0
    loops: int = 0
    trades: int = 0
    cost_today: Decimal = Decimal(0)
    last_error: str | None = None
    reason: str | None = None
    eta_seconds: float | None = None
    leftovers: list[Leftover] = []
    token: str | None = None  # target_token auto: the token being traded
    mul_point: Decimal | None = None  # ... its mulPoint today
    cost_per_credit: Decimal | None = None  # ... its expected USDT cost per credited USDT
    volume_at: float | None = None  # wall time of the read that gave current_volume
    # the user's (all its strategies): volume points of today's reported volume so far,
    # and today's cost per point (issue 13)
    points_today: int | None = None
    cost_per_point: Decimal | None = None
    session_stored_at: float | None = None  # wall time its session was stored (issue 23)
    # the user's day as ``history`` shows it (all strategies, from the books)
    user_round_trips: int | None = None
    user_cost_today: Decimal | None = None
    # volume this strategy's trades should add since the read of ``current_volume`` (the
    # exchange's figure, kept as it was read): the supervisor's estimate, not confirmed
    unconfirmed_volume: Decimal | None = None
    node: str | None = None  # a pool (store:): the node that runs or ran it (issue 22)


class StrategyStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    strategy_id: str
    strategy_name: str
    token: str
    enabled: bool = True
    selected: bool = True  # False: left out by ``run --strategy`` (not checked, not traded)
    target_volume: Decimal
    users: list[UserStatus] = []


class NodeStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A node of the pool (issue 22) as the store last saw it."""

    node: str
    alive: bool  # heartbeat within a lease
    heartbeat_age_seconds: float
    users: int = 0  # users it runs


class StatusReply(Reply, kw_only=True):
    pid: int
    started_at: float
    day: str  # UTC day being worked, YYYY-MM-DD
    phase: SupervisorPhase
    next_run_at: float | None = None
    strategies: list[StrategyStatus] = []
    # a pool (store:): this node, what it knows of the store, every node seen
    node: str | None = None
    store: str | None = None
    nodes: list[NodeStatus] = []


# One union per direction: the decoder of a socket knows only its own (``protocol.codec``).
AnyEvent = (  # user process -> supervisor (events socket)
    Hello
    | PhaseChanged
    | VolumeChecked
    | BatchPlanned
    | TokenChosen
    | OrderUpdate
    | TradeDone
    | ErrorReport
    | Summary
)
AnyCommand = Ping | Drain | StopNow | UpdateSettings  # supervisor -> user process
AnyRequest = (  # CLI -> supervisor (control socket)
    StatusRequest | StopRequest | StartRequest | ReloadRequest | ShutdownRequest
)
AnyReply = OkReply | ErrorReply | StatusReply  # supervisor -> CLI

# every message of every conversation: their tags are unique across all of them
Message = AnyEvent | AnyCommand | AnyRequest | AnyReply
