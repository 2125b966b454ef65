"""The ``dashboard`` section of the config (issue 23).

```yaml
dashboard:
  listen: 127.0.0.1:8780                       # off when absent
  token_file: /etc/alphavol/dashboard.token    # `alphavol dashboard token FILE` writes one
  session_warn_hours: 96                       # notify once a stored session is this old
```

``listen`` is ``HOST:PORT`` (a loopback address by default; anything else is the
operator's explicit choice and is logged at warning); with it, ``token_file`` is required
(a relative path is taken from the config file's directory). ``session_warn_hours`` holds
whether or not the page is served: a session older than that is announced once.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.checker import ConfigChecker
from config.schema import Rule, check_value, describe
from config.settings import DashboardSettings

DASHBOARD_RULES: dict[str, Rule] = {
    "listen": Rule("text"),
    "token_file": Rule("path"),
    "session_warn_hours": Rule("float", lo=Decimal(0), lo_open=True, hi=Decimal(24 * 365)),
}
_PORT = Rule("int", lo=Decimal(1), hi=Decimal(65535))


def dashboard_section(ctx: ConfigChecker, raw: Any, base_dir: Path) -> DashboardSettings:
    """``dashboard:`` checked (problems go to ``ctx``, the loader's issue collector)."""
    path = ("dashboard",)
    if raw is None:
        return DashboardSettings()
    if not isinstance(raw, dict):
        ctx.err(path, f"expected a mapping (listen, token_file), got {describe(raw)}")
        return DashboardSettings()
    values = ctx.section(raw, path, DASHBOARD_RULES)
    warn = (
        {"session_warn_hours": values["session_warn_hours"]}
        if "session_warn_hours" in values
        else {}
    )
    listen = values.get("listen")
    if listen is None:
        return DashboardSettings(**warn)
    host, sep, port = listen.rpartition(":")
    port_value, problem = check_value(int(port) if port.isdigit() else port, _PORT)
    if not sep or not host or problem:
        ctx.err((*path, "listen"), f"expected HOST:PORT (e.g. 127.0.0.1:8780), got {listen!r}")
        return DashboardSettings(**warn)
    token_file = values.get("token_file")
    if token_file is None:
        if "token_file" not in raw:
            ctx.err(
                path,
                "listen needs token_file (write one with `alphavol dashboard token FILE`)",
            )
        return DashboardSettings(**warn)
    p = Path(os.path.expanduser(str(token_file)))
    resolved = str((p if p.is_absolute() else base_dir / p).resolve())
    return DashboardSettings(listen=f"{host}:{port_value}", token_file=resolved, **warn)
