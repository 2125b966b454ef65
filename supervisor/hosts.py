"""What the arbiter's collaborators see of it: one Protocol each, of what they use.

``Fleet`` and ``Observer`` are built by the ``Arbiter`` (``supervisor.arbiter``) with the
arbiter itself, but they are typed against these narrow views, so a reader (and mypy)
sees what each may touch. Members read only are properties: the arbiter may replace
them (a reload replaces ``config``; ``runtime`` and ``pool`` appear in ``run``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from config.loader import AppConfig
    from exchange.auth import Credentials
    from exchange.clock import Clock
    from supervisor.faults import Faults
    from supervisor.observer import Observer
    from supervisor.pool.node import Pool
    from supervisor.restart import RestartPolicy
    from supervisor.runtime import Runtime
    from supervisor.sdnotify import Notifier
    from supervisor.spawn import Spawner
    from supervisor.tasks import TaskWatch


class Door(Protocol):
    """A listener the observer closes at exit (metrics, dashboard)."""

    async def close(self) -> None: ...


class FleetHost(Protocol):
    """What ``supervisor.fleet.Fleet`` uses of the arbiter."""

    @property
    def config(self) -> AppConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def policy(self) -> RestartPolicy: ...
    @property
    def spawner(self) -> Spawner: ...
    @property
    def runtime(self) -> Runtime: ...
    @property
    def notifier(self) -> Notifier: ...
    @property
    def faults(self) -> Faults: ...
    @property
    def tasks(self) -> TaskWatch: ...
    @property
    def observer(self) -> Observer: ...
    @property
    def pool(self) -> Pool | None: ...
    @property
    def heartbeat(self) -> float: ...
    @property
    def stopping(self) -> object: ...  # truthy once the supervisor stops
    @property
    def credentials_for(self) -> Callable[[str], Credentials]: ...
    @property
    def redact(self) -> Callable[[str], str]: ...

    def mono(self) -> float: ...
    def wake(self) -> None: ...
    def say(self, text: str) -> None: ...
    def status_line(self) -> str: ...
    async def wait(self, limit: float | None) -> None: ...


class ObserverHost(Protocol):
    """What ``supervisor.observer.Observer`` uses of the arbiter (``Observer.start`` gets
    the arbiter itself: it hands it to the services it starts)."""

    @property
    def config(self) -> AppConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def redact(self) -> Callable[[str], str]: ...
    @property
    def metrics(self) -> Door | None: ...
    @property
    def dashboard(self) -> Door | None: ...
