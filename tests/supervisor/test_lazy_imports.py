"""Apprise and prometheus-client cost memory (issue 15 measures the supervisor's): the
supervisor imports them only when notify.urls / metrics.listen are set."""

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
arb.observer.started()  # what run() does first: starts the notification thread if any
arb.observer.outbox.close(5)
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
    assert loaded(notify) == "['apprise']"
