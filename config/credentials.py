"""The credentials store: each account's browser session, in one SQLite file.

The file is created 0600 inside a 0700 directory. With a Fernet key (a file given by
``$ALPHAVOL_SECRET_KEY_FILE``, systemd's ``$CREDENTIALS_DIRECTORY/alphavol-key``, or
``$ALPHAVOL_SECRET_KEY``) the cookies and headers are encrypted at rest and the store
refuses to open without that key; without one it works in plain text, and ``run`` (at
start) and ``users add`` say so. Cookie and header *names*, labels and dates are stored in
the clear so ``users list`` can show them, never the values.

Every operation opens and closes its own connection: the supervisor forks user processes,
and a SQLite handle must never be shared across a fork.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import structlog
from cryptography.fernet import Fernet, InvalidToken

from config.logsetup import add_secrets
from config.settings import PathSettings
from exchange.auth import Credentials
from exchange.clock import SYSTEM_CLOCK, Clock

log = structlog.get_logger(__name__)

KEY_FILE_ENV = "ALPHAVOL_SECRET_KEY_FILE"
KEY_ENV = "ALPHAVOL_SECRET_KEY"
SYSTEMD_CREDENTIAL = "alphavol-key"
_KEY_CHECK = b"alphavol-credentials-v1"
PLAINTEXT_HINT = (
    f"to encrypt the stored sessions: `alphavol users keygen FILE`, then set ${KEY_FILE_ENV}=FILE"
    f" (systemd: LoadCredential={SYSTEMD_CREDENTIAL}:FILE)"
)
_WRITABLE_HINT = (
    "the data directory (paths.data_dir) and the store must be writable by the user"
    " alphavol runs as"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS sessions (
    user_id      TEXT PRIMARY KEY,
    label        TEXT,
    cookie_names TEXT NOT NULL,
    header_names TEXT NOT NULL,
    secret       BLOB NOT NULL,
    encrypted    INTEGER NOT NULL,
    stored_at    TEXT NOT NULL,
    last_ok_at   TEXT
);
"""


class CredentialsError(Exception):
    """The store cannot be used (wrong or missing key, unreadable file ...). Never holds a
    secret value."""


class CredentialsMissing(CredentialsError, KeyError):
    """No session stored for this user."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no stored session for user {user_id}")
        self.user_id = user_id

    def __str__(self) -> str:  # KeyError would add quotes
        return str(self.args[0])


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What can be shown about a stored session: names and dates, never values."""

    user_id: str
    label: str | None
    cookie_names: list[str]
    header_names: list[str]
    stored_at: str
    last_ok_at: str | None


class _Secret(msgspec.Struct):
    cookies: dict[str, str]
    headers: dict[str, str]


def key_from_environment(environ: dict[str, str] | None = None) -> bytes | None:
    """The Fernet key, from (in order) $ALPHAVOL_SECRET_KEY_FILE, systemd's credentials
    directory, or $ALPHAVOL_SECRET_KEY; None when none is set."""
    env = os.environ if environ is None else environ
    candidates: list[Path] = []
    if env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV]).expanduser()
        if not path.is_file():
            raise CredentialsError(f"${KEY_FILE_ENV} names {path}, which is not a readable file")
        candidates.append(path)
    if env.get("CREDENTIALS_DIRECTORY"):
        sd = Path(env["CREDENTIALS_DIRECTORY"]) / SYSTEMD_CREDENTIAL
        if sd.is_file():
            candidates.append(sd)
    for path in candidates:
        try:
            return path.read_bytes().strip()
        except OSError as exc:
            raise CredentialsError(f"cannot read the key file {path}: {exc.strerror}") from None
    value = env.get(KEY_ENV)
    return value.strip().encode() if value and value.strip() else None


def new_key() -> bytes:
    """A fresh Fernet key (what to put in the key file)."""
    return Fernet.generate_key()


def _fernet(key: bytes) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise CredentialsError(
            "the secret key is not a valid Fernet key (32 url-safe base64-encoded bytes);"
            " create one with `alphavol users keygen FILE`"
        ) from None


def _now_iso(clock: Clock) -> str:
    return datetime.fromtimestamp(clock.time(), tz=UTC).isoformat(timespec="seconds")


class CredentialStore:
    """Sessions per user id. See the module docstring for the security model."""

    def __init__(self, path: Path, *, key: bytes | None = None, clock: Clock = SYSTEM_CLOCK):
        self.path = Path(path)
        self._clock = clock
        self._fernet = _fernet(key) if key else None
        if key:
            add_secrets([key.decode(errors="replace")])
        self._create()
        self._check_key()

    def warn_if_plain(self) -> None:
        """Log ``credentials_plaintext`` when the sessions are stored unencrypted. Said
        where it matters (``run`` at start, ``users add`` in its own words), never by the
        commands that only read the store."""
        if self._fernet is None:
            log.warning("credentials_plaintext", path=str(self.path), hint=PLAINTEXT_HINT)

    @classmethod
    def open(cls, paths: PathSettings, *, clock: Clock = SYSTEM_CLOCK) -> CredentialStore:
        """The store of a config's data directory, with the key from the environment."""
        return cls(paths.credentials_path, key=key_from_environment(), clock=clock)

    @property
    def encrypted(self) -> bool:
        return self._fernet is not None

    # -- file and connection handling -------------------------------------------------

    def _create(self) -> None:
        directory = self.path.parent
        try:
            if not directory.exists():
                directory.mkdir(parents=True, mode=0o700)
                os.chmod(directory, 0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise CredentialsError(
                f"cannot create the credentials store {self.path}: {exc.strerror}; {_WRITABLE_HINT}"
            ) from None
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise CredentialsError(
                f"cannot open the credentials store {self.path}: {exc}; {_WRITABLE_HINT}"
            ) from None
        try:
            with conn:  # commit on success, roll back on error
                yield conn
        except sqlite3.OperationalError as exc:  # read-only file or directory, locked ...
            raise CredentialsError(
                f"cannot use the credentials store {self.path}: {exc}; {_WRITABLE_HINT}"
            ) from None
        except sqlite3.DatabaseError as exc:
            raise CredentialsError(
                f"the credentials store {self.path} is corrupt ({exc}): restore it from a"
                " backup, or move it away and store every session again with"
                " `alphavol users add ID --curl FILE`"
            ) from None
        finally:
            conn.close()

    def _check_key(self) -> None:
        """A marker encrypted with the store's key tells a wrong key from a corrupt row."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
            if row is None:
                if self._fernet is not None:
                    conn.execute(
                        "INSERT INTO meta (name, value) VALUES ('key_check', ?)",
                        (self._fernet.encrypt(_KEY_CHECK),),
                    )
                    self._encrypt_plain_rows(conn)
                return
            if self._fernet is None:
                raise CredentialsError(
                    f"the credentials store {self.path} is encrypted; provide its key with"
                    f" ${KEY_FILE_ENV}, ${KEY_ENV} or systemd LoadCredential={SYSTEMD_CREDENTIAL}"
                )
            try:
                ok = self._fernet.decrypt(bytes(row[0])) == _KEY_CHECK
            except InvalidToken:
                ok = False
            if not ok:
                raise CredentialsError(
                    f"wrong secret key for the credentials store {self.path} (it was"
                    f" encrypted with a different key): give the key it was created with"
                    f" (${KEY_FILE_ENV}, ${KEY_ENV} or systemd LoadCredential="
                    f"{SYSTEMD_CREDENTIAL}), or move the store away and add the sessions again"
                )

    def _encrypt_plain_rows(self, conn: sqlite3.Connection) -> None:
        assert self._fernet is not None
        rows = conn.execute("SELECT user_id, secret FROM sessions WHERE encrypted = 0").fetchall()
        for user_id, secret in rows:
            conn.execute(
                "UPDATE sessions SET secret = ?, encrypted = 1 WHERE user_id = ?",
                (self._fernet.encrypt(bytes(secret)), user_id),
            )
        if rows:
            log.info("credentials_encrypted_existing", count=len(rows))

    def _seal(self, creds: Credentials) -> tuple[bytes, int]:
        raw = msgspec.json.encode(_Secret(cookies=creds.cookies, headers=creds.headers))
        if self._fernet is None:
            return raw, 0
        return self._fernet.encrypt(raw), 1

    def _open_secret(self, user_id: str, blob: bytes, encrypted: int) -> Credentials:
        if encrypted:
            if self._fernet is None:  # cannot happen after _check_key, but be explicit
                raise CredentialsError("the credentials store is encrypted; no key given")
            try:
                blob = self._fernet.decrypt(bytes(blob))
            except InvalidToken:
                raise CredentialsError(
                    f"the stored session of user {user_id} cannot be decrypted with this key"
                ) from None
        try:
            secret = msgspec.json.decode(bytes(blob), type=_Secret)
        except msgspec.DecodeError:
            raise CredentialsError(f"the stored session of user {user_id} is corrupt") from None
        creds = Credentials(cookies=secret.cookies, headers=secret.headers)
        add_secrets(creds.secret_values())
        return creds

    # -- the public operations ----------------------------------------------------------

    def put(self, user_id: str, creds: Credentials, *, label: str | None = None) -> None:
        """Store (or replace) a user's session."""
        user_id = str(user_id)
        add_secrets(creds.secret_values())
        blob, encrypted = self._seal(creds)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO sessions (user_id, label, cookie_names, header_names, secret,"
                " encrypted, stored_at, last_ok_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT(user_id) DO UPDATE SET label = COALESCE(excluded.label, sessions.label),"
                " cookie_names = excluded.cookie_names, header_names = excluded.header_names,"
                " secret = excluded.secret, encrypted = excluded.encrypted,"
                " stored_at = excluded.stored_at, last_ok_at = NULL",
                (
                    user_id,
                    label,
                    json.dumps(sorted(creds.cookies)),
                    json.dumps(sorted(creds.headers)),
                    blob,
                    encrypted,
                    _now_iso(self._clock),
                ),
            )
        log.info("credentials_stored", user_id=user_id, encrypted=bool(encrypted))

    def get(self, user_id: str) -> Credentials:
        """A user's session; raises CredentialsMissing when none is stored."""
        user_id = str(user_id)
        with self._connect() as conn:
            row = conn.execute(
                "SELECT secret, encrypted FROM sessions WHERE user_id = ?", (user_id,)
            ).fetchone()
        if row is None:
            raise CredentialsMissing(user_id)
        return self._open_secret(user_id, row[0], row[1])

    def has(self, user_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM sessions WHERE user_id = ?", (str(user_id),)
            ).fetchone()
        return row is not None

    def list(self) -> list[UserRecord]:
        """Every stored session's names and dates (no values), ordered by user id."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT user_id, label, cookie_names, header_names, stored_at, last_ok_at"
                " FROM sessions"
            ).fetchall()
        records = [
            UserRecord(
                user_id=r[0],
                label=r[1],
                cookie_names=json.loads(r[2]),
                header_names=json.loads(r[3]),
                stored_at=r[4],
                last_ok_at=r[5],
            )
            for r in rows
        ]
        return sorted(records, key=lambda r: (not r.user_id.isdigit(), _id_key(r.user_id)))

    def remove(self, user_id: str) -> bool:
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM sessions WHERE user_id = ?", (str(user_id),))
        return cur.rowcount > 0

    def mark_ok(self, user_id: str) -> None:
        """Record that the session just worked against the exchange."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE sessions SET last_ok_at = ? WHERE user_id = ?",
                (_now_iso(self._clock), str(user_id)),
            )

    def all_secret_values(self) -> builtins.list[str]:
        """Every cookie and header value of every stored user (for the log redactor)."""
        values: set[str] = set()
        with self._connect() as conn:
            rows = conn.execute("SELECT user_id, secret, encrypted FROM sessions").fetchall()
        for user_id, blob, encrypted in rows:
            values.update(self._open_secret(user_id, blob, encrypted).secret_values())
        return sorted(values, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.path)!r}, encrypted={self.encrypted})"


def _id_key(user_id: str) -> tuple[int, str]:
    return (int(user_id), "") if user_id.isdigit() else (0, user_id)
