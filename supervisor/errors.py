"""The supervisor's own error for a problem the operator must fix before it can start."""

from __future__ import annotations


class SupervisorError(Exception):
    """Startup problem (credentials, another supervisor running, a bad knob): exit 2,
    nothing started. On reload: the new config is refused with this reason."""
