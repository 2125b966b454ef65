"""The shape every control command has: ``execute`` answers one request from the
arbiter's memory, or returns an awaitable of the answer (``control`` sends it when ready)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from protocol import messages as m

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

R = TypeVar("R", bound=m.Request)


class Command(Generic[R]):
    name: ClassVar[str]
    request: ClassVar[type[m.Request]]

    def execute(
        self, arbiter: Arbiter, req: R
    ) -> m.Reply | Awaitable[m.Reply]:  # pragma: no cover - abstract
        raise NotImplementedError
