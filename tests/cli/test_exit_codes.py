"""Issue 12, exit codes: the operator's own mistakes (the encryption key, the credentials
store, an unwritable data directory, a config that is not there) are one line naming the
file and what to do, and exit status 2, from every command; never a traceback (systemd's
RestartPreventExitStatus=2 then stops the restart loop)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from config.credentials import new_key
from tests.cli.conftest import alphavol, clean_env
from tests.supervisor.harness import Deployment, strategy

QUICK = ("quick", "--token", "KOGE", "--volume", "10", "--amount", "5", "--user", "1")
# every command that opens the credentials store
STORE_COMMANDS = [
    ("run", "--once"),
    QUICK,
    ("volumes",),
    ("volumes", "--json"),
    ("check",),
    ("check", "--online"),
    ("users", "list"),
    ("users", "check"),
    ("users", "remove", "1"),
]
CONTROL = [("status",), ("stop",), ("start",), ("reload",), ("shutdown",), ("status", "--json")]


@pytest.fixture
def site():
    """A config and an encrypted credentials store for user 1; nothing listens at the
    exchange URL (none of these commands may get that far)."""
    d = Deployment(base_url="http://127.0.0.1:9")
    d.write_config([strategy("s1", ["1"], target=100)])
    from exchange.sim.testing import SimHarness

    d.store({"1": SimHarness().credentials("acct1")})
    yield d
    d.cleanup()


async def run_all(
    d: Deployment, commands: list[tuple[str, ...]], env: dict[str, str], **kw
) -> list[tuple[tuple[str, ...], object]]:
    sem = asyncio.Semaphore(4)

    async def one(args: tuple[str, ...]):
        async with sem:
            res = await alphavol(*args, "--config", str(d.config_path), env=env, cwd=d.dir, **kw)
            return args, res

    return await asyncio.gather(*(one(a) for a in commands))


def assert_operator_error(results, *needles: str) -> None:
    for args, res in results:
        where = f"alphavol {' '.join(args)}: {res.stderr!r}"
        assert res.returncode == 2, where
        assert "Traceback" not in res.stderr + res.stdout, where
        said = [line for line in res.stderr.splitlines() if not line.startswith("{")]
        first = said[0]
        if args[0] == "check" and len(said) > 1:  # its problems (this one first), their count
            assert said[-1].endswith("problem(s); nothing was started."), where
        else:
            assert len(said) == 1 and first.startswith("alphavol: "), where
        for needle in needles:
            assert needle in first, (needle, where)


async def test_missing_key_wrong_key_and_key_file_from_every_command(site):
    db = str(site.data / "credentials.sqlite")
    no_key = await run_all(site, STORE_COMMANDS, clean_env())
    assert_operator_error(no_key, db, "is encrypted; provide its key", "ALPHAVOL_SECRET_KEY_FILE")
    wrong = await run_all(
        site, [("run",), QUICK], clean_env(ALPHAVOL_SECRET_KEY=new_key().decode())
    )
    assert_operator_error(wrong, "wrong secret key", db, "give the key it was created with")
    gone = str(site.dir / "no-such.key")
    no_file = await run_all(site, [("volumes",)], clean_env(ALPHAVOL_SECRET_KEY_FILE=gone))
    assert_operator_error(no_file, gone, "not a readable file")
    # nothing was started or written: the store is intact and still opens with its key
    res = await alphavol(
        "users", "list", "--config", str(site.config_path),
        env=clean_env(ALPHAVOL_SECRET_KEY=site.key.decode()),
    )  # fmt: skip
    assert res.returncode == 0 and "user 1" in res.stdout, res.stderr


async def test_a_corrupt_store(site):
    db = site.data / "credentials.sqlite"
    db.write_bytes(b"this is not an SQLite database " * 200)
    results = await run_all(
        site,
        [("run", "--once"), ("volumes",), ("check",)],
        clean_env(ALPHAVOL_SECRET_KEY=site.key.decode()),
    )
    assert_operator_error(results, str(db), "is corrupt", "restore it from a backup")


async def test_a_data_directory_the_service_user_cannot_write(site):
    """The store is readable, the directory is not writable: the supervisor refuses before
    starting. Root may write anywhere, so when the tests run as root the CLI runs without
    the capabilities that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): still root, so it
    reaches the checkout and its venv wherever they live (a 0700 home included), but bound
    by the directory's mode like any service user."""
    env = clean_env(ALPHAVOL_SECRET_KEY=site.key.decode())
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all")
    os.chmod(site.data, 0o555)
    try:
        results = await run_all(site, [("run", "--once"), QUICK], env, prefix=prefix)
        assert_operator_error(results, f"{site.data} (paths.data_dir)", "writable")
        assert not site.runtime.exists()  # nothing was started
    finally:
        os.chmod(site.data, stat.S_IRWXU)


async def test_a_config_path_that_does_not_exist_is_refused_by_every_command(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    commands = [*STORE_COMMANDS, ("users", "add", "1", "--curl", "-"), *CONTROL]
    sem = asyncio.Semaphore(4)

    async def one(args):
        async with sem:
            return args, await alphavol(*args, "--config", str(missing), cwd=tmp_path)

    results = await asyncio.gather(*(one(a) for a in commands))
    assert_operator_error(results, str(missing), "does not exist", "alphavol init")
    assert os.listdir(tmp_path) == []  # no ./var/ made, nothing written
