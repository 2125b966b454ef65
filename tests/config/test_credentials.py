"""The credentials store: file modes, encryption at rest, wrong and missing keys."""

from __future__ import annotations

import io
import os
import stat

import pytest

from config.credentials import (
    CredentialsError,
    CredentialsMissing,
    CredentialStore,
    key_from_environment,
    new_key,
)
from config.logsetup import configure_logging
from config.settings import PathSettings
from exchange.auth import Credentials
from exchange.clock import OffsetClock

from .conftest import SESSION_COOKIES, SESSION_HEADERS, secret_values

CREDS = Credentials(cookies=dict(SESSION_COOKIES), headers=dict(SESSION_HEADERS))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _raw_bytes(directory) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.is_file())


def test_store_file_is_0600_in_a_0700_directory(tmp_path):
    store = CredentialStore(tmp_path / "data" / "credentials.sqlite")
    store.put("1", CREDS, label="alice")
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(store.path) == 0o600
    for extra in (tmp_path / "data").iterdir():  # journals too, if any are left
        assert _mode(extra) & 0o077 == 0


def test_round_trip_list_mark_ok_remove(tmp_path):
    clock = OffsetClock(0)
    store = CredentialStore(tmp_path / "c.sqlite", clock=clock)
    store.put("2", CREDS)
    store.put("10", CREDS, label="bob")
    assert store.get("2") == CREDS
    records = store.list()
    assert [r.user_id for r in records] == ["2", "10"]
    assert records[1].label == "bob"
    assert records[0].cookie_names == sorted(SESSION_COOKIES)
    assert records[0].last_ok_at is None
    store.mark_ok("2")
    assert store.list()[0].last_ok_at is not None
    assert set(store.all_secret_values()) == set(secret_values())
    assert store.remove("2") is True
    assert store.remove("2") is False
    with pytest.raises(CredentialsMissing, match="user 2"):
        store.get("2")
    # A record never shows a value.
    assert not any(v in repr(store.list()) for v in secret_values())


def test_encrypted_store_cannot_be_read_without_its_key(tmp_path):
    key = new_key()
    store = CredentialStore(tmp_path / "c.sqlite", key=key)
    store.put("1", CREDS)
    raw = _raw_bytes(tmp_path)
    for value in secret_values():
        assert value.encode() not in raw
    with pytest.raises(CredentialsError, match="encrypted; provide its key"):
        CredentialStore(tmp_path / "c.sqlite")
    assert CredentialStore(tmp_path / "c.sqlite", key=key).get("1") == CREDS


def test_wrong_key_gives_a_clear_error(tmp_path):
    CredentialStore(tmp_path / "c.sqlite", key=new_key()).put("1", CREDS)
    other = new_key()
    with pytest.raises(CredentialsError) as err:
        CredentialStore(tmp_path / "c.sqlite", key=other)
    assert "wrong secret key" in str(err.value)
    assert other.decode() not in str(err.value)
    with pytest.raises(CredentialsError, match="not a valid Fernet key"):
        CredentialStore(tmp_path / "c.sqlite", key=b"not-a-key")


def test_plain_store_warns_when_asked_and_is_encrypted_once_a_key_is_given(tmp_path):
    buf = io.StringIO()
    configure_logging("INFO", "json", stream=buf)
    CredentialStore(tmp_path / "c.sqlite").put("1", CREDS)
    store = CredentialStore(tmp_path / "c.sqlite")
    assert "credentials_plaintext" not in buf.getvalue()  # opening it is quiet
    store.warn_if_plain()  # `run` at start
    assert buf.getvalue().count("credentials_plaintext") == 1
    assert SESSION_COOKIES["p20t"].encode() in _raw_bytes(tmp_path)  # plain text indeed

    key = new_key()
    assert CredentialStore(tmp_path / "c.sqlite", key=key).get("1") == CREDS
    assert SESSION_COOKIES["p20t"].encode() not in (tmp_path / "c.sqlite").read_bytes()
    with pytest.raises(CredentialsError):
        CredentialStore(tmp_path / "c.sqlite")


def test_key_sources(tmp_path, monkeypatch):
    key = new_key()
    assert key_from_environment({}) is None
    assert key_from_environment({"ALPHAVOL_SECRET_KEY": key.decode()}) == key
    key_file = tmp_path / "k"
    key_file.write_bytes(key + b"\n")
    assert key_from_environment({"ALPHAVOL_SECRET_KEY_FILE": str(key_file)}) == key
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir()
    (creds_dir / "alphavol-key").write_bytes(key)
    assert key_from_environment({"CREDENTIALS_DIRECTORY": str(creds_dir)}) == key
    with pytest.raises(CredentialsError, match="not a readable file"):
        key_from_environment({"ALPHAVOL_SECRET_KEY_FILE": str(tmp_path / "missing")})

    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds_dir))
    paths = PathSettings(data_dir=str(tmp_path / "data"), runtime_dir=str(tmp_path / "run"))
    store = CredentialStore.open(paths)
    assert store.encrypted
    assert store.path == paths.credentials_path


def test_each_operation_uses_its_own_connection(tmp_path):
    # Two handles on one file (as after a fork) see each other's writes at once.
    a = CredentialStore(tmp_path / "c.sqlite")
    b = CredentialStore(tmp_path / "c.sqlite")
    a.put("1", CREDS)
    assert b.get("1") == CREDS
    b.remove("1")
    assert a.list() == []


def test_cli_reports_a_wrong_or_missing_key_with_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from config.cli import check, users

    from .conftest import MINIMAL, bash_curl, write_config

    cfg = str(write_config(tmp_path, MINIMAL))
    curl = tmp_path / "s.curl"
    curl.write_text(bash_curl())
    runner = CliRunner()
    monkeypatch.setenv("ALPHAVOL_SECRET_KEY", new_key().decode())
    assert runner.invoke(users, ["add", "1", "--curl", str(curl), "--config", cfg]).exit_code == 0

    monkeypatch.setenv("ALPHAVOL_SECRET_KEY", new_key().decode())
    result = runner.invoke(users, ["list", "--config", cfg])
    assert result.exit_code == 2
    assert "wrong secret key" in result.output and "Traceback" not in result.output

    monkeypatch.delenv("ALPHAVOL_SECRET_KEY")
    result = runner.invoke(check, ["--config", cfg])
    assert result.exit_code == 2
    assert "is encrypted; provide its key" in result.output

    result = runner.invoke(users, ["keygen", str(tmp_path / "new.key")])
    assert result.exit_code == 0
    assert _mode(tmp_path / "new.key") == 0o600
    assert runner.invoke(users, ["keygen", str(tmp_path / "new.key")]).exit_code == 2
