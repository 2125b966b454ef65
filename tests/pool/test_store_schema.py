"""The pool's PostgreSQL: the schema is created once by whoever opens it first, also by
many at the same instant; the credentials live there, encrypted with the key file."""

from __future__ import annotations

import asyncio
import threading
import time

import psycopg
import pytest

from config.credentials import CredentialsError, new_key
from config.pgstore import SCHEMA_VERSION, StoreCredentials, StoreError, connect
from config.store_section import StoreSettings
from exchange.auth import Credentials
from tests.pgcluster import PASSWORD


def test_many_openers_at_once_make_one_schema(pg_url):
    settings = StoreSettings(url=pg_url)
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            with connect(settings) as conn:
                conn.execute("SELECT 1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with connect(settings) as conn:
        (version,) = conn.execute("SELECT version FROM alphavol_schema").fetchone()
        (rows,) = conn.execute("SELECT count(*) FROM alphavol_schema").fetchone()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert (version, rows) == (SCHEMA_VERSION, 1)
    assert {"sessions", "books", "leases", "nodes", "commands"} <= tables


def test_credentials_in_the_store_are_encrypted_with_the_key(pg_url):
    settings = StoreSettings(url=pg_url)
    key = new_key()
    store = StoreCredentials(settings, key=key)
    creds = Credentials(
        cookies={"p20t": "cookie-value-123456"}, headers={"csrftoken": "csrf-99887766"}
    )
    store.put("7", creds, label="seven")
    assert store.get("7") == creds
    assert [r.user_id for r in store.list()] == ["7"]
    with psycopg.connect(**settings.connect_params()) as conn:
        (blob,) = conn.execute("SELECT secret FROM sessions").fetchone()
    assert b"cookie-value-123456" not in bytes(blob)
    with pytest.raises(CredentialsError, match="wrong secret key"):
        StoreCredentials(settings, key=new_key())
    assert store.remove("7") and not store.has("7")


def test_unreachable_or_refused_store_names_it_without_the_password(pg_url, monkeypatch):
    bad = StoreSettings(url=pg_url.replace("alphavol@", "nobody@"))
    with pytest.raises(StoreError) as err:
        StoreCredentials(bad, key=new_key())
    assert "nobody@127.0.0.1" in str(err.value) and PASSWORD not in str(err.value)


async def test_a_node_session_left_in_a_transaction_is_ended_by_the_server(pg_url):
    """A node cut off mid-transaction: the server ends its session once idle in that
    transaction past the store deadline (lease/5), so the locks it held wait nobody long
    (before, until TCP gave up: hours)."""
    from supervisor.pool.store import PoolStore

    settings = StoreSettings(url=pg_url, lease_seconds=5)
    store = PoolStore(settings, "c")
    await store.open()
    assert store.conn is not None
    await store.conn.execute("BEGIN")
    await store.conn.execute("INSERT INTO leases (user_id, node, epoch) VALUES ('9', 'c', 1)")

    def other_node_inserts() -> float:  # would wait for c's transaction to end
        t0 = time.monotonic()
        with psycopg.connect(**settings.connect_params(), autocommit=True) as other:
            other.execute("SET lock_timeout = '30s'")
            other.execute("INSERT INTO leases (user_id) VALUES ('9') ON CONFLICT DO NOTHING")
            row = other.execute("SELECT node FROM leases WHERE user_id = '9'").fetchone()
        assert row == (None,), row  # c's insert was rolled back with its session
        return time.monotonic() - t0

    try:
        took = await asyncio.to_thread(other_node_inserts)
    finally:
        store.close()
    assert took < 10, took
