"""The shipped systemd unit passes `systemd-analyze verify` and has the safety settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.listener import FD_PER_DOOR, fd_reserve

UNIT = Path(__file__).resolve().parents[2] / "config" / "alphavol.service"


def _systemd_analyze() -> str | None:
    exe = shutil.which("systemd-analyze")
    if exe:
        return exe
    if shutil.which("apt-get"):
        # a fresh machine has empty package lists: install would find nothing
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "systemd"]):
            subprocess.run(
                cmd,
                capture_output=True,
                timeout=240,
                check=False,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    return shutil.which("systemd-analyze")


def test_unit_has_the_required_settings():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "KillMode=mixed",
        "Restart=on-failure",
        "RuntimeDirectoryMode=0700",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "User=alphavol",
    ):
        assert line in text.splitlines(), line
    assert "LoadCredential=alphavol-key:" in text
    stop = int(next(x for x in text.splitlines() if x.startswith("TimeoutStopSec=")).split("=")[1])
    assert stop > 30 + 10 + 15  # default stop grace + the supervisor's margins
    assert any(x.startswith("WatchdogSec=") for x in text.splitlines())
    nofile = int(next(x for x in text.splitlines() if x.startswith("LimitNOFILE=")).split("=")[1])
    assert nofile >= fd_reserve(1000) + 2 * FD_PER_DOOR  # a thousand users and two doors


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    exe = _systemd_analyze()
    if exe is None:
        pytest.skip("systemd-analyze is not installed and apt-get could not install it")
    # verify checks that ExecStart exists: point it at this checkout's entry point
    here = Path(sys.executable).parent / "alphavol"
    unit = tmp_path / "alphavol.service"
    unit.write_text(UNIT.read_text().replace("/opt/alphavol/.venv/bin/alphavol", str(here)))
    res = subprocess.run(
        [exe, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr + res.stdout
    assert "alphavol.service" not in res.stderr, res.stderr  # no warnings about our unit
