"""Issue 12, the smaller items: `alphavol sim` says what it serves and what to paste, and a
port in use is one line and exit 2; `alphavol init` writes the packaged example config
(and the systemd unit), never over a file without --force; alphavol refuses to start when
one of its packages belongs to another distribution."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import yaml

from config.loader import example_config_path
from tests.cli.conftest import ALPHAVOL, alphavol, clean_env, fake_distribution


def _lines_until(proc: subprocess.Popen, last: str, within: float = 20) -> list[str]:
    """stdout's lines up to the first one starting with ``last``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + within
    while not any(x.startswith(last) for x in buf.decode().splitlines()):
        assert time.monotonic() < deadline, buf
        if select.select([fd], [], [], 0.5)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, f"alphavol sim ended: {buf!r}"
            buf += chunk
    return buf.decode().splitlines()


def test_sim_says_what_it_serves_and_a_busy_port_is_one_line():
    proc = subprocess.Popen(
        [ALPHAVOL, "sim", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
        start_new_session=True,
    )
    try:
        lines = _lines_until(proc, "  ws_url:")
        base_url = lines[0].removeprefix("base_url=")
        assert lines[1] == f"ws_url={base_url.replace('http', 'ws')}/w3w/stream"
        text = "\n".join(lines)
        served = [line.split() for line in lines if "mulPoint" in line]
        assert ["KOGE", "ALPHA_22", "BSC", "mulPoint", "1"] in served, text
        assert ["AOP", "ALPHA_382", "BSC", "mulPoint", "4"] in served, text
        assert "p20t cookie" in text and "10000 USDT" in text
        pasted = yaml.safe_load(text[text.index("exchange:") :])
        assert pasted == {"exchange": {"base_url": base_url, "ws_url": lines[1][len("ws_url=") :]}}

        port = base_url.rsplit(":", 1)[1]
        res = subprocess.run(
            [ALPHAVOL, "sim", "--host", "127.0.0.1", "--port", port],
            capture_output=True,
            text=True,
            timeout=20,
            env=clean_env(),
        )
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip().splitlines() == [
            f"alphavol: port {port} on 127.0.0.1 is already in use;"
            " choose another --port (0: any free)"
        ]
        assert proc.poll() is None  # the first one serves on
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


async def test_init_writes_the_example_and_the_unit_and_never_overwrites(tmp_path: Path):
    example = example_config_path().read_text()
    res = await alphavol("init", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    written = tmp_path / "config" / "trading_config.yaml"  # where --config looks by default
    assert written.read_text() == example
    assert "alphavol users add" in res.stdout and "alphavol run" in res.stdout

    written.write_text("# my edits\n" + example)
    res = await alphavol("init", cwd=tmp_path)
    assert res.returncode == 2 and "refusing to overwrite" in res.stderr, res.stderr
    assert written.read_text().startswith("# my edits")
    res = await alphavol("init", "--force", cwd=tmp_path)
    assert res.returncode == 0 and written.read_text() == example

    unit = tmp_path / "alphavol.service"
    env = clean_env(ALPHAVOL_CONFIG=str(tmp_path / "etc" / "alphavol.yaml"))
    res = await alphavol("init", "--unit", str(unit), cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "etc" / "alphavol.yaml").read_text() == example
    assert unit.read_text() == example_config_path().with_name("alphavol.service").read_text()
    # the written config is valid: `check` only misses the sessions nobody stored yet
    res = await alphavol("check", cwd=tmp_path, env=env)
    assert res.returncode == 2
    assert all(
        "has no stored session" in x or x.endswith("nothing was started.")
        for x in res.stderr.splitlines()
        if not x.startswith("{")
    ), res.stderr


async def test_a_package_of_another_distribution_is_refused_with_one_line(tmp_path: Path):
    site = tmp_path / "site"
    init = fake_distribution(site, "config", "config", "0.5.1")
    env = clean_env(PYTHONPATH=str(site))  # ahead of alphavol's own packages
    for args in (("check",), ("status",), ("--version",)):
        res = await alphavol(*args, cwd=tmp_path, env=env)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "Traceback" not in res.stderr
        (line,) = res.stderr.splitlines()
        assert f"the package 'config' ({init.resolve()}) belongs to the distribution" in line
        assert "'config 0.5.1'" in line and "pipx install" in line
    # the same directory without the foreign package: alphavol runs
    res = await alphavol("--version", cwd=tmp_path, env=clean_env())
    assert res.returncode == 0, res.stderr
