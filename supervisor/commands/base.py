"""The shape every control command has."""

from __future__ import annotations

from typing import Any, ClassVar

from protocol import messages as m


class Command:
    name: ClassVar[str]
    request: ClassVar[type[m.Request]]

    def execute(self, arbiter: Any, req: Any) -> m.Reply:  # pragma: no cover - abstract
        raise NotImplementedError
