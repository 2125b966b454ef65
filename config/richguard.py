"""Keep rich out of the processes that do not render.

structlog imports ``rich`` (its console and traceback modules, about 4 MB) as soon as it is
itself imported, whenever rich is installed. The supervisor and every user process import
structlog, and their memory is measured; only a few CLI commands draw tables. So the
``config`` package (imported before structlog by every entry point: the CLI, the fork
server's preload, ``python -m supervisor``) marks rich as absent until ``allow_rich`` is
called by the code that renders.
"""

from __future__ import annotations

import sys


def keep_rich_out() -> None:
    """Make ``import rich`` fail until ``allow_rich``, unless structlog or rich is loaded."""
    if "structlog" not in sys.modules and "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]


def allow_rich() -> None:
    """Let ``import rich`` work again (structlog has made up its mind by now)."""
    if "rich" in sys.modules and sys.modules["rich"] is None:
        del sys.modules["rich"]
