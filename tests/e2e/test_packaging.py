"""`pip install .` gives a working alphavol that needs nothing from the source tree: the
example config, the systemd unit and the simulator's token universe are package data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_wheel_runs_the_example_check_from_outside_the_tree(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (wheel,) = wheels.glob("alphavol-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the wheel, ahead of the editable checkout

    def py(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=away, env=env, capture_output=True, text=True, timeout=120
        )

    probe = py(
        "-c",
        (
            "import config.loader as c, exchange.sim.universe as u, supervisor\n"
            "print(c.__file__); print(c.example_config_path());\n"
            "print(u.__file__)"
        ),
    )
    assert probe.returncode == 0, probe.stderr
    for line in probe.stdout.split():
        assert line.startswith(str(site)), f"{line} is not from the installed wheel"
    for data in (
        "config/trading_config.yaml",
        "config/alphavol.service",
        "exchange/sim/tokens.yaml",
        "supervisor/dashboard/static/app.js",  # the dashboard serves its own assets
        "supervisor/dashboard/static/index.html",
    ):
        assert (site / data).is_file(), f"{data} is missing from the wheel"

    example = site / "config" / "trading_config.yaml"
    check = py("-m", "supervisor", "check", "--config", str(example))
    # the example is valid; the only complaints are the sessions nobody has stored yet
    assert check.returncode == 2, check.stdout + check.stderr
    problems = [x for x in check.stderr.splitlines()[:-1] if not x.startswith("{")]  # no log
    assert len(problems) == 3, check.stderr  # nothing but the sessions nobody stored yet
    assert all("user_ids" in p and "has no stored session" in p for p in problems), problems

    sim = py("-m", "supervisor", "sim", "--help")
    assert sim.returncode == 0 and "--scenario" in sim.stdout

    # `pip install supervisor` (supervisord) into the same place overwrites our package's
    # __init__.py: alphavol refuses to run, in one line, instead of running foreign code
    from tests.cli.conftest import fake_distribution

    fake_distribution(site, "supervisor", "supervisor", "4.2.5")
    hijacked = py("-m", "supervisor", "check", "--config", str(example))
    assert hijacked.returncode == 2, hijacked.stdout + hijacked.stderr
    (line,) = hijacked.stderr.splitlines()
    assert "the package 'supervisor'" in line and "'supervisor 4.2.5'" in line, line
