"""The per-user trading process: batch loop, OTO round trips, order tracking, journal.

Where to look:

* ``lifecycle`` the process's life in one place: phases and their edges, drain/now, may_place;
  its gate and waits raise ``StopRequested`` (``errors``), the one way a stop reaches trading
* ``main``      entry points (``child_main``, ``run_user``, ``python -m userproc``), signals
* ``process``   one user's job from start to Summary
* ``exits``     how it ended -> exit status, in one table (``EXITS``)
* ``runner``    the batch loop of one strategy (volume -> plan -> trades -> settle -> learn)
* ``planner``   how many trades and how big (credit estimated, then learnt from the exchange)
* ``markets``   the market of the next batch: a fixed token checked, or ``auto``'s choice
* ``chooser``   the cheapest token per credited USDT from the public book (pure)
* ``balance``   the 100 USDT balance rule (``min_balance_usdt``)
* ``scope``     which tokens' volume a strategy counts; ``jitter`` human-like variation
* ``roundtrip`` one OTO from price to last fill, timeouts, leftover sells, cost
* ``recovery``  reconciling the journal with the exchange after a restart / lost POST
* ``tracker``   every order's lifecycle, merged from stream and REST, never going backwards
* ``journal``   SQLite write-ahead record of every order (intent before the POST)
* ``session``   what the parts share, and the one retry policy for exchange calls
* ``link``      the ZeroMQ DEALER to the supervisor (Hello, seq, coalescing, heartbeat)
* ``guard``     the volatility guard; ``tuning`` process knobs; ``waits`` the one first-of-two wait
"""
