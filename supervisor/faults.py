"""A test knob: make one of the supervisor's own tasks raise, to test that it is watched.

``ALPHAVOL_FAIL_TASK=NAME[:N]`` (tests only) makes the task NAME raise ``InjectedFault``
at its N-th check point (default the first), once. Names and check points: ``events``
(each frame from a user process), ``control`` (each control request), ``heartbeat`` (each
round of Pings), ``volumes`` (each volume check). Unset in production: ``hit`` is a dict
lookup.
"""

from __future__ import annotations

import os

from supervisor.errors import SupervisorError

ENV = "ALPHAVOL_FAIL_TASK"
NAMES = ("events", "control", "heartbeat", "volumes")


class InjectedFault(RuntimeError):
    pass


class Faults:
    def __init__(self, spec: str | None = None) -> None:
        self._at: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        if spec:
            name, _, nth = spec.strip().partition(":")
            if name not in NAMES or not (nth or "1").isdigit() or int(nth or "1") < 1:
                raise SupervisorError(
                    f"{ENV}={spec!r}: want NAME[:N], NAME one of {', '.join(NAMES)}"
                )
            self._at[name] = int(nth or "1")

    @classmethod
    def from_env(cls) -> Faults:
        return cls(os.environ.get(ENV))

    def hit(self, name: str) -> None:
        """A check point of task ``name``: raises there when the knob says so."""
        if name not in self._at:
            return
        self._seen[name] = n = self._seen.get(name, 0) + 1
        if n == self._at[name]:
            raise InjectedFault(f"injected failure in the {name} task ({ENV}, check point {n})")
