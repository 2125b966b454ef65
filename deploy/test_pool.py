"""Two containers as nodes of one pool against one PostgreSQL (issue 22), for `make test-image`
(deploy/test-image.sh runs it once the image's `alphavol run` has --node; `make test` does not
collect it: it is outside tests/).

On the host: a throw-away PostgreSQL (tests/pgcluster.py: Debian's initdb as the postgres
user, a free port) and the simulated exchange (`alphavol sim`, as the demo starts it). In the
image, all with --network=host: `users add` for every user (the sessions go to the store),
then two nodes, `alphavol run --node node1` and `--node node2`, each with its own container
filesystem (paths) and the same config. Passes when, by the simulator's own record, every
account reached its target with nothing left open, `alphavol status --json` on the nodes
shows users run by both, and both exit 0 when stopped (SIGTERM). Exit 0 on success, 1 with the reason otherwise.

    python deploy/test_pool.py --engine podman --image localhost/alphavol:latest
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config.credentials import new_key  # noqa: E402
from exchange.sim.testing import SimHarness  # noqa: E402
from supervisor.demo import SimProcess  # noqa: E402
from tests.pgcluster import PASSWORD, PgCluster, pg_bin  # noqa: E402

ACCOUNTS = {"1": "pool-ann", "2": "pool-ben", "3": "pool-cat", "4": "pool-dan"}
TOKEN, TARGET = "KOGE", Decimal(300)
NODES = ("node1", "node2")
DEADLINE_SECONDS = 300
IN_CONTAINER = {"config": "/etc/alphavol/trading_config.yaml", "key": "/run/secrets/alphavol-key"}
DB_PASSWORD_FILE = "/run/secrets/db-password"
WORKED = ("STARTING", "RUNNING", "STOPPING", "DONE")  # states of a user a node runs or ran


def pool_config(sim: SimProcess, store_url: str) -> dict[str, Any]:
    return {
        "global_settings": {
            "max_concurrent_users": 3,  # 4 users: one node alone cannot run them all at once
            "default_trade_interval_seconds": 0,
            "default_volume_check_delay_seconds": 2,
            "default_buy_offset_percentage": 2,
            "default_sell_profit_percentage": 2,
            "order_timeout_seconds": 20,
            "stop_grace_seconds": 10,
        },
        "strategies": [
            {
                "strategy_id": "pool_koge",
                "strategy_name": "KOGE, two nodes",
                "enabled": True,
                "target_token": TOKEN,
                "target_chain": "BSC",
                "target_volume": int(TARGET),
                "single_trade_amount_usdt": 25,
                "user_ids": [int(u) for u in ACCOUNTS],
            }
        ],
        "exchange": {"base_url": sim.base_url, "ws_url": sim.ws_url, "request_timeout_seconds": 5},
        "store": {"url": store_url, "lease_seconds": 10, "password_file": DB_PASSWORD_FILE},
        "paths": {"data_dir": "/var/lib/alphavol", "runtime_dir": "/tmp/alphavol"},
        "schedule": {"daily_restart": False},
        "logging": {"level": "INFO", "format": "json"},
    }


def curl_text(account: str) -> str:
    """A "Copy as cURL" of a simulated session, what an operator pastes into users add."""
    creds = SimHarness().credentials(account)
    headers = " ".join(f"-H '{k}: {v}'" for k, v in creds.headers.items())
    cookies = "; ".join(f"{k}={v}" for k, v in creds.cookies.items())
    return f"curl 'http://sim/bapi' {headers} -b '{cookies}'\n"


class Pool:
    def __init__(self, engine: str, image: str, workdir: Path) -> None:
        self.engine, self.image, self.workdir = engine, image, workdir
        self.tag = f"alphavol-pool-{os.getpid()}"
        self.started: list[str] = []

    def mounts(self) -> list[str]:
        # the files are 0644 in a 0700 directory: the image's user (10001) reads them
        return [
            "--network=host",
            "-v", f"{self.workdir / 'config.yaml'}:{IN_CONTAINER['config']}:ro",
            "-v", f"{self.workdir / 'secret.key'}:{IN_CONTAINER['key']}:ro",
            "-v", f"{self.workdir / 'db-password'}:{DB_PASSWORD_FILE}:ro",
            "-e", f"ALPHAVOL_SECRET_KEY_FILE={IN_CONTAINER['key']}",
        ]  # fmt: skip

    def users_add(self, user_id: str, account: str) -> None:
        cmd = [self.engine, "run", "--rm", "-i", *self.mounts(), self.image]
        res = subprocess.run(
            [*cmd, "users", "add", user_id, "--curl", "-", "--label", account],
            input=curl_text(account), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if res.returncode != 0:
            fail(f"users add {user_id} in the image exited {res.returncode}: {res.stderr.strip()}")

    def start_node(self, node: str) -> None:
        name = f"{self.tag}-{node}"
        # as deploy/kubernetes/ runs it: a read-only root, writable /tmp and data directory
        writable = ["--read-only", "--tmpfs", "/tmp", "-v", "/var/lib/alphavol"]
        cmd = [self.engine, "run", "-d", "--name", name, *writable, *self.mounts(), self.image]
        subprocess.run([*cmd, "run", "--node", node], check=True, capture_output=True, timeout=60)
        self.started.append(name)

    def status(self, node: str) -> Any:
        res = subprocess.run(
            [self.engine, "exec", f"{self.tag}-{node}", "alphavol", "status", "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return json.loads(res.stdout) if res.returncode == 0 and res.stdout.strip() else None

    def inspect(self, name: str, field: str) -> str:
        res = subprocess.run(
            [self.engine, "inspect", "-f", "{{.State." + field + "}}", name],
            capture_output=True, text=True,
        )  # fmt: skip
        return res.stdout.strip()

    def stopped(self) -> list[str]:
        """The node containers that are no longer running (a node exits only on a fault)."""
        return [name for name in self.started if self.inspect(name, "Running") != "true"]

    def print_logs(self) -> None:
        for name in self.started:
            print(f"--- the last lines of {name}:", file=sys.stderr)
            subprocess.run([self.engine, "logs", "--tail", "20", name], stdout=sys.stderr)

    def stop_all(self) -> dict[str, str]:
        """`stop` every node (SIGTERM: a drain, then exit); name -> its exit status."""
        codes = {}
        for name in self.started:
            subprocess.run([self.engine, "stop", "-t", "30", name], capture_output=True)
            codes[name] = self.inspect(name, "ExitCode")
        return codes

    def remove(self) -> None:
        self.stop_all()
        for name in self.started:
            subprocess.run([self.engine, "rm", "-f", "-v", name], capture_output=True)


def owners(status: Any, asked: str) -> dict[str, str]:
    """user_id -> node, from every user object of one node's `status --json`: its `node`
    (the pool's view, issue 22), else the node asked, if it runs or ran that user there."""
    found: dict[str, str] = {}
    stack = [status]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            user, node = item.get("user_id"), item.get("node")
            if user is not None and (node or item.get("state") in WORKED):
                found[str(user)] = str(node or asked)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def account_done(sim: SimProcess, account: str) -> bool:
    rec = sim.admin(f"/accounts/{account}")
    volume = Decimal(str(rec["volume_now"].get(TOKEN, "0")))
    still_open = [o for o in rec["orders"] if o["status"] in ("NEW", "PENDING", "PARTIALLY_FILLED")]
    return volume >= TARGET and not still_open


def fail(reason: str) -> None:
    print(f"alphavol image: FAILED: two-node pool: {reason}", file=sys.stderr)
    raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", required=True)
    parser.add_argument("--image", required=True)
    args = parser.parse_args()
    bindir = pg_bin()
    if bindir is None:
        fail("PostgreSQL is not installed (apt-get install postgresql)")
    workdir = Path(tempfile.mkdtemp(prefix="alphavol-pool-"))
    pg = PgCluster(bindir).start()
    sim = SimProcess(workdir)
    pool = Pool(args.engine, args.image, workdir)
    try:
        import yaml

        (workdir / "config.yaml").write_text(
            yaml.safe_dump(pool_config(sim, pg.database()), sort_keys=False)
        )
        (workdir / "secret.key").write_bytes(new_key())
        (workdir / "db-password").write_text(PASSWORD + "\n")
        for name in ("config.yaml", "secret.key", "db-password"):
            (workdir / name).chmod(0o644)
        for user_id, account in ACCOUNTS.items():
            pool.users_add(user_id, account)
        for node in NODES:
            pool.start_node(node)
        started, seen = time.monotonic(), {}
        while time.monotonic() - started < DEADLINE_SECONDS:
            if pool.stopped():
                pool.print_logs()
                fail(f"a node exited: {', '.join(pool.stopped())}")
            for node in NODES:  # who runs whom, while they run
                seen.update(owners(pool.status(node), node))
            if all(account_done(sim, a) for a in ACCOUNTS.values()):
                break
            time.sleep(2)  # polling the simulator's record, not waiting for an event
        else:
            pool.print_logs()
            fail(f"not every account reached {TARGET} {TOKEN} in {DEADLINE_SECONDS} s")
        if set(seen.values()) != set(NODES):
            fail(f"users were not run by both nodes: {seen or 'no user in status --json'}")
        took = time.monotonic() - started
        codes = pool.stop_all()
        if any(code != "0" for code in codes.values()):
            pool.print_logs()
            fail(f"a node did not exit 0 on stop (SIGTERM): {codes}")
        print(
            f"alphavol image: two nodes traded {len(ACCOUNTS)} users to target in {took:.0f} s"
            f" ({', '.join(f'user {u}: {n}' for u, n in sorted(seen.items()))})",
            file=sys.stderr,
        )
    finally:
        pool.remove()
        sim.stop()
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
