"""The long-lived service: decides who trades, runs one process per user, answers the CLI.

Where things live:

* ``arbiter``  - the main loop (day cycle, spawning, signals, reload, graceful stop);
  ``run_supervisor(config, once=...)`` is the importable entry point.
* ``states``   - the per-user process state machine, every edge named.
* ``restart``  - what an exit status means: done, stopped, FATAL, or restart with backoff.
* ``spawn`` / ``template`` - forking user processes from a pre-imported fork server.
* ``records``  - what is known per user and per (strategy, user), fed by child events.
* ``volumes``  - the concurrent volume check (also ``alphavol volumes``).
* ``control`` + ``commands/`` - the control socket, one class per request.
* ``client``   - ``ControlClient(runtime_dir).request(msg, timeout)`` for the CLI/demo.
* ``render``   - status as text and JSON; ``sdnotify`` - systemd's notify protocol.
* ``cli``      - the ``alphavol`` click group.
"""

import config  # noqa: F401  (first: keeps rich out of structlog, see config/richguard.py)
