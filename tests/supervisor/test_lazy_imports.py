"""Apprise and prometheus-client cost memory (issue 15 measures the supervisor's): the
supervisor imports prometheus-client only when metrics.listen is set, and Apprise never
(each notification channel sends from a process of its own)."""

from __future__ import annotations

import subprocess
import sys

from tests.supervisor.harness import ROOT

PROBE = """
import asyncio, sys
from pathlib import Path
from config.loader import config_from_dict
from supervisor.arbiter import Arbiter
import supervisor.cli, supervisor.books_cli
cfg = config_from_dict({"strategies": [{"strategy_id": "k", "target_token": "KOGE",
    "target_volume": 100, "user_ids": [1]}], %s}, base_dir=Path("/tmp"))
arb = Arbiter(cfg)
async def main():
    arb.observer.started()  # what run() does first: the "started" message, if any
    await arb.observer.outbox.close(1)
asyncio.run(main())
print(sorted(m for m in ("apprise", "prometheus_client") if m in sys.modules))
"""


def loaded(sections: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", PROBE % sections],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1]


def test_neither_library_is_imported_unless_its_section_is_set():
    assert loaded("") == "[]"
    notify = '"notify": {"urls": ["json://127.0.0.1:9/x"], "retries": 1}'
    assert loaded(notify) == "[]"  # Apprise runs in each channel's sender process
