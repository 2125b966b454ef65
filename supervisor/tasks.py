"""Every task the supervisor starts, watched (nothing fails silently).

A task that raises is logged with its traceback and reported to ``on_failure(name,
again)``; so is a service loop (events, control, heartbeat: meant to run as long as the
supervisor) that returns, and a callback on the event loop that raises (the loop's
exception handler). The arbiter then drains its users and exits non-zero
(``SupervisorExit.INTERNAL``), so systemd restarts it. The drain itself needs the service
loops, so a failed one is started again, once; ``again`` says it failed a second time.
Finished tasks are forgotten at once: the set does not grow with the days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Factory = Callable[[], Coroutine[Any, Any, Any]]


class TaskWatch:
    def __init__(self, on_failure: Callable[[str, bool], None]) -> None:
        self.on_failure = on_failure
        self._tasks: set[asyncio.Task] = set()
        self._services: dict[str, Factory] = {}
        self._restarted: set[str] = set()
        self.closed = False

    def start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def service(self, name: str, factory: Factory) -> None:
        self._services[name] = factory
        self.start(factory(), name)

    def watch_callbacks(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self._loop_error)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        name = task.get_name()
        if task.cancelled() or self.closed:
            return
        exc = task.exception()
        if exc is not None:
            log.error("supervisor_task_failed", task=name, exc_info=exc)
        elif name in self._services:
            log.error("supervisor_task_ended", task=name)
        else:
            return
        again = name in self._restarted
        if name in self._services and not again:
            self._restarted.add(name)
            self.start(self._services[name](), name)
        self.on_failure(name, again)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        log.error("supervisor_callback_failed", message=context.get("message"), exc_info=exc)
        if exc is not None and "handle" in context and not self.closed:  # our callback raised
            self.on_failure("callback", False)

    async def close(self) -> None:
        """Cancel every task still running and wait for them (at teardown)."""
        self.closed = True
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        asyncio.get_running_loop().set_exception_handler(None)
