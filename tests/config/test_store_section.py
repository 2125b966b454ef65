"""The store section (issue 22): what loads, what is refused (exit 2, one line naming the
key), and that the database password never shows in a message, a repr or the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import MINIMAL, write_config
from .conftest import load_minimal as load
from .conftest import refused as issues

PASSWORD = "S3cr3t-Db-Pa55word"


def test_no_store_is_one_host_and_a_store_loads_with_its_defaults(tmp_path):
    assert load(tmp_path, "").store is None
    cfg = load(tmp_path, "store:\n  url: postgresql://alphavol@db.example:5433/pool\n")
    assert cfg.store is not None
    assert cfg.store.url == "postgresql://alphavol@db.example:5433/pool"
    assert cfg.store.lease_seconds == 20.0
    params = cfg.store.connect_params()
    assert (params["host"], params["port"], params["user"], params["dbname"]) == (
        "db.example",
        5433,
        "alphavol",
        "pool",
    )


def test_the_password_from_url_env_or_file_and_never_in_the_url_or_repr(tmp_path, monkeypatch):
    monkeypatch.delenv("ALPHAVOL_STORE_PASSWORD", raising=False)
    cfg = load(tmp_path, f"store:\n  url: postgresql://a:{PASSWORD}@db:5432/x\n")
    assert PASSWORD not in cfg.store.url and PASSWORD not in repr(cfg.store)
    assert PASSWORD not in repr(cfg)
    assert cfg.store.connect_params()["password"] == PASSWORD
    monkeypatch.setenv("ALPHAVOL_STORE_PASSWORD", PASSWORD + "env")
    cfg = load(tmp_path, "store:\n  url: postgresql://a@db/x\n  lease_seconds: 6\n")
    assert cfg.store.connect_params()["password"] == PASSWORD + "env"
    assert cfg.store.lease_seconds == 6.0
    monkeypatch.delenv("ALPHAVOL_STORE_PASSWORD")
    (tmp_path / "pw").write_text(PASSWORD + "file\n")
    cfg = load(tmp_path, "store:\n  url: postgresql://a@db/x\n  password_file: pw\n")
    assert cfg.store.connect_params()["password"] == PASSWORD + "file"


def test_malformed_store_sections_name_the_key(tmp_path):
    (issue,) = issues(tmp_path, "store:\n  url: mysql://db/x\n")
    assert issue.path == "store.url" and "postgresql://" in issue.message
    (issue,) = issues(tmp_path, "store:\n  lease_seconds: 20\n")
    assert issue.path == "store" and "url" in issue.message
    (issue,) = issues(tmp_path, "store:\n  url: postgresql://db/x\n  lease_seconds: 1\n")
    assert issue.path == "store.lease_seconds"
    (issue,) = issues(tmp_path, "store:\n  url: postgresql://db/x\n  lease_second: 5\n")
    assert "lease_seconds" in issue.message  # did you mean
    (issue,) = issues(tmp_path, "store:\n  url: postgresql://db/x\n  password_file: nope\n")
    assert issue.path == "store.password_file"


def test_cli_exits_2_on_a_bad_store_without_showing_the_password(tmp_path):
    path = write_config(tmp_path, MINIMAL + f"store:\n  url: pg://u:{PASSWORD}@db/x\n")
    exe = Path(sys.executable).parent / "alphavol"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHAVOL")}
    proc = subprocess.run(
        [str(exe), "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "store.url" in proc.stderr and "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout
