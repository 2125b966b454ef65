"""The long-lived service: decides who trades, runs one process per user, answers the CLI.

Where things live:

* ``arbiter``  - the main loop (day cycle, signals as commands, graceful stop);
  ``service.run_supervisor(config, once=...)`` is the importable entry point.
* ``fleet``    - every user, and what the arbiter does to them (spawn, exits, events, stop).
* ``user_record`` - one user's process; its methods are the only way a user changes state.
* ``states``   - the per-user process state machine, every edge named.
* ``restart``  - what an exit status means: done, stopped, FATAL, or restart with backoff.
* ``reload_plan`` (pure diff of two configs) and ``reconfigure`` (a reload applied).
* ``tasks``    - every task watched; ``terminal`` - has a foreground run lost its terminal?
* ``runtime``  - the runtime directory and its sockets; ``sessions`` - stored sessions and
  redaction; ``faults`` - the ALPHAVOL_FAIL_TASK test knob; ``days``; ``errors``.
* ``spawn`` / ``template`` - forking user processes from a pre-imported fork server.
* ``records``  - per (strategy, user) progress rows, fed by child events; status rows.
* ``volumes``  - the concurrent volume check (also ``alphavol volumes``).
* ``control`` + ``commands/`` - the control socket, one class per request.
* ``client``   - ``ControlClient(runtime_dir).request(msg, timeout)`` for the CLI/demo.
* ``render``   - status as text and JSON; ``sdnotify`` - systemd's notify protocol.
* ``cli``      - the ``alphavol`` click group.
"""

import config  # noqa: F401  (first: keeps rich out of structlog, see config/richguard.py)
