"""Issue 12, the CLI with a half-edited config: status, stop, start, shutdown and reload
reach a running supervisor from its runtime directory alone (--runtime-dir,
$ALPHAVOL_RUNTIME_DIR, or paths.runtime_dir read leniently), and reload still reports
the config's problems (the supervisor answers them), with one exit status, 2.

Issue 20 item 13: a config that lost its ``paths:`` (or cannot be read) still reaches the
supervisor started with it, through the record it keeps in $XDG_RUNTIME_DIR/alphavol; a
killed supervisor's record is ignored."""

from __future__ import annotations

import json
import signal

import yaml

from tests.cli.conftest import alphavol
from tests.supervisor.harness import strategy


async def test_control_commands_with_the_config_broken_on_disk(deploy, sim):
    d = deploy()
    d.store({u: sim.credentials(f"acct{u}") for u in ("1", "2")})
    d.write_config([strategy("s1", ["1", "2"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}')
    await d.wait_ready()
    await d.wait_users(
        lambda us: all(u.state == "RUNNING" for u in us.values()), 20, "both users running"
    )
    good = d.config_path.read_text()
    # half-way through an edit: an unclosed flow sequence is a YAML syntax error
    d.config_path.write_text(good + "user_overrides: [\n  - user_id: 2\n    strategies: {s1:\n")

    res = await d.acli("status")
    assert res.returncode == 0, res.stderr
    assert "s1" in res.stdout and "RUNNING" in res.stdout
    assert "YAML syntax error" in res.stderr and "paths.runtime_dir" in res.stderr
    res = await d.acli("status", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["strategies"][0]["strategy_id"] == "s1"

    res = await d.acli("stop", "--user", "2")
    assert res.returncode == 0, res.stderr
    await d.wait_users(lambda us: us[("s1", "2")].state == "STOPPED", 10, "user 2 STOPPED")
    res = await d.acli("start", "s1", "--user", "2")
    assert res.returncode == 0, res.stderr
    await d.wait_users(lambda us: us[("s1", "2")].state == "RUNNING", 10, "user 2 again")

    # reload: the supervisor rereads the file and refuses it, naming the problem
    res = await d.acli("reload")
    assert res.returncode == 2, res.stderr
    assert "YAML syntax error" in res.stderr and "old one kept" in res.stderr
    # a schema error gets the same exit status
    d.config_path.write_text(good.replace("target_volume: 100000", "target_volume: -5"))
    res = await d.acli("reload")
    assert res.returncode == 2, res.stderr
    assert "target_volume" in res.stderr and "old one kept" in res.stderr
    assert (await d.users())[("s1", "1")].state == "RUNNING"  # the old config runs on

    # no config at all: the runtime directory is enough
    args = ("--config", str(d.dir / "no-such.yaml"))
    res = await alphavol("status", *args, "--runtime-dir", str(d.runtime), env=d.env)
    assert res.returncode == 0 and "s1" in res.stdout, res.stderr
    res = await alphavol("status", *args, env={**d.env, "ALPHAVOL_RUNTIME_DIR": str(d.runtime)})
    assert res.returncode == 0 and "s1" in res.stdout, res.stderr
    # ... and without it, a config that is not there is refused (exit 2), as everywhere
    res = await alphavol("status", *args, env=d.env)
    assert res.returncode == 2 and "does not exist" in res.stderr, res.stderr
    res = await alphavol("shutdown", *args, env={**d.env, "ALPHAVOL_RUNTIME_DIR": str(d.runtime)})
    assert res.returncode == 0, res.stderr
    assert await d.wait_exit(20) == 0


def test_the_runtime_dir_line_is_found_in_a_broken_file_whatever_its_style(tmp_path):
    from config.runtime import find_runtime_dir

    cfg = tmp_path / "c.yaml"
    for text, want in (
        ("paths:\n  runtime_dir: /srv/av/run  # sockets\nstrategies: [\n", "/srv/av/run"),
        ("paths: {data_dir: d, runtime_dir: 'rt dir'}\nx: [\n", str(tmp_path / "rt dir")),
        ('paths:\n  runtime_dir: "./r"\n\tbad: tab\n', str(tmp_path / "r")),
        ("strategies: [\n", str(tmp_path / "var" / "run")),  # not written: the default
    ):
        cfg.write_text(text)
        found = find_runtime_dir(cfg)
        assert str(found.path) == want, (text, found)
        assert found.note and "YAML syntax error" in found.note
    cfg.write_text("paths:\n  runtime_dir: ok\nstrategies: nonsense\n")  # valid YAML, bad schema
    assert find_runtime_dir(cfg).path == tmp_path / "ok"
    assert find_runtime_dir(cfg, "/explicit").path.as_posix() == "/explicit"


def _without_paths(d) -> None:
    """The operator's edit lost the whole ``paths:`` section."""
    doc = yaml.safe_load(d.config_path.read_text())
    del doc["paths"]
    d.config_path.write_text(yaml.safe_dump(doc))


async def test_a_config_that_lost_its_paths_still_reaches_the_supervisor(deploy, sim, tmp_path):
    xdg = tmp_path / "xdg"  # the per-user place the supervisor records where it serves
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}', XDG_RUNTIME_DIR=str(xdg))
    await d.wait_ready()
    (record,) = (xdg / "alphavol").iterdir()
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    _without_paths(d)

    res = await d.acli("status")
    assert res.returncode == 0, res.stderr
    assert "s1" in res.stdout and "RUNNING" in res.stdout
    assert "names no paths.runtime_dir" in res.stderr and str(d.runtime) in res.stderr
    # the record is what finds it: another user's (no record) looks in the default place
    res = await alphavol(
        "status",
        "--config",
        str(d.config_path),
        env={**d.env, "XDG_RUNTIME_DIR": str(tmp_path / "other")},
    )
    assert res.returncode == 1 and "no supervisor" in res.stderr, res.stderr
    # a config file moved away (or unreadable): the record still names the place
    moved = d.config_path.rename(d.dir / "aside.yaml")
    res = await d.acli("status", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["strategies"][0]["strategy_id"] == "s1"
    assert "does not exist" in res.stderr
    moved.rename(d.config_path)
    # an edit that names another runtime directory: the running supervisor is still found
    doc = yaml.safe_load(d.config_path.read_text())
    doc["paths"] = {"runtime_dir": str(d.dir / "elsewhere")}
    d.config_path.write_text(yaml.safe_dump(doc))
    res = await d.acli("status")
    assert res.returncode == 0 and "RUNNING" in res.stdout, res.stderr
    assert "no supervisor serves in" in res.stderr and str(d.runtime) in res.stderr

    res = await d.acli("shutdown", "--now")
    assert res.returncode == 0, res.stderr
    assert await d.wait_exit(20) == 0, d.diagnose()
    assert list((xdg / "alphavol").iterdir()) == []  # removed at a clean exit


async def test_the_record_of_a_killed_supervisor_is_ignored(deploy, sim, tmp_path):
    xdg = tmp_path / "xdg"
    d = deploy()
    d.store({"1": sim.credentials("acct1")})
    d.write_config([strategy("s1", ["1"], target=100000, amount=10)])
    d.start(once=False, ALPHAVOL_STANDIN='{"trade_seconds": 0.02}', XDG_RUNTIME_DIR=str(xdg))
    await d.wait_ready()
    d.signal(signal.SIGKILL)
    await d.wait_exit(20)
    assert (d.runtime / "control.ipc").exists()  # its socket file stays behind
    _without_paths(d)
    res = await d.acli("status")
    assert res.returncode == 1 and "no supervisor" in res.stderr, res.stderr
    assert str(d.runtime) not in res.stderr  # the default place, not the dead one's
    assert list((xdg / "alphavol").iterdir()) == []  # the stale record is gone
