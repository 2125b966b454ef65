"""The users' stored sessions, as the supervisor needs them.

``Sessions.check(config)`` runs at start and on every reload: each user of an enabled
strategy must have a stored session (else ``SupervisorError``: exit 2, or the reload is
refused), and every secret value is registered with ``config.logsetup`` before anything
can log it. ``get(user_id)`` hands the session out with the user's proxy of the config in
force (``Credentials.proxy``), so the volume check and the user process take that route.
``stored_at`` (user -> epoch seconds) says when each session was stored (``users add``, the
dashboard's refresh): status shows its age. There is no fallback: if redaction cannot be installed, the supervisor must
not run (the import error propagates).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from config import logsetup
from config.credentials import CredentialsError, CredentialsMissing, CredentialStore
from exchange.auth import Credentials
from supervisor.errors import SupervisorError


class Sessions:
    def __init__(self, store: CredentialStore | None = None) -> None:
        self.store = store
        self.proxies: dict[str, str] = {}
        self.stored_at: dict[str, float] = {}
        self.cached: dict[str, Any] = {}  # a pool node's sessions, read as it claims users

    def check(self, config: Any) -> None:
        if self.store is None:
            try:
                self.store = CredentialStore.open(config.paths)
            except CredentialsError as exc:
                raise SupervisorError(f"credentials: {exc}") from None
        missing = []
        secrets: list[str] = []
        proxies = dict(getattr(config, "proxies", {}))
        for uid in config.user_ids():
            try:
                secrets.extend(self.store.get(uid).routed(proxies.get(uid)).secret_values())
            except CredentialsMissing:  # and the command that fixes it
                missing.append(
                    f"user {uid} has no stored session: alphavol users add {uid} --curl FILE"
                )
            except Exception as exc:  # CredentialsError, a session that is not one
                missing.append(f"user {uid}: {exc}")
        if missing:
            raise SupervisorError("credentials: " + "; ".join(missing))
        logsetup.add_secrets(secrets)
        self.proxies = proxies
        self.stored_at = stored_times(self.store)

    def stored(self, user_id: str, at: float) -> None:
        """A fresh session of ``user_id`` was stored at ``at`` (epoch seconds)."""
        self.stored_at[user_id] = at

    def get(self, user_id: str) -> Credentials:
        creds = self.cached.get(user_id)
        if creds is None:
            assert self.store is not None, "Sessions.check() first"
            creds = self.store.get(user_id)
        return creds.routed(self.proxies.get(user_id))

    @staticmethod
    def redact(text: str) -> str:
        return logsetup.redact(text)


def stored_times(store: CredentialStore) -> dict[str, float]:
    """When each stored session was stored (epoch seconds), from the store's dates."""
    out: dict[str, float] = {}
    for r in store.list():
        with contextlib.suppress(ValueError):
            out[r.user_id] = datetime.fromisoformat(r.stored_at).timestamp()
    return out
