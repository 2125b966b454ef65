"""`alphavol users ...` and `alphavol check`: store sessions, validate the config.

Every message that could carry user data goes through ``redact`` before it is printed,
and every failure exits with status 2 and a one-line reason, never a traceback: these
commands are run by people pasting browser sessions, and a traceback is where secrets
leak.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click
import msgspec

from config.credentials import (
    PLAINTEXT_HINT,
    CredentialsError,
    CredentialsMissing,
    CredentialStore,
    new_key,
)
from config.curl import CurlParseError, parse_curl
from config.loader import AppConfig, ConfigError, load_config
from config.logsetup import add_secrets, configure_logging
from config.output import (
    EXIT_OPERATOR,
    CliError,
    config_problems,
    fail,
    guarded,
    say,
)
from config.schema import ID_RE
from exchange.auth import Credentials

if TYPE_CHECKING:
    from config.online import Located

EXIT_PROBLEM = EXIT_OPERATOR  # kept for old imports
DEFAULT_CONFIG = "config/trading_config.yaml"

config_option = click.option(
    "--config",
    "config_path",
    envvar="ALPHAVOL_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The YAML config file (also $ALPHAVOL_CONFIG).",
)

echo = say  # the only way these commands print (see config.output)
_guarded = guarded


def missing_config(config_path: str) -> str:
    """What to say when the config file named by --config/$ALPHAVOL_CONFIG is not there."""
    return (
        f"the config file {config_path} does not exist; give the right one with --config FILE"
        f" (or $ALPHAVOL_CONFIG), or write the example there with `alphavol init {config_path}`"
    )


def load_or_exit(config_path: str) -> AppConfig:
    """The validated config, or every problem printed to stderr and exit status 2."""
    if not Path(os.path.expanduser(config_path)).exists():
        fail(missing_config(config_path))
    try:
        return load_config(config_path)
    except ConfigError as exc:
        config_problems(exc)


def _setup(config_path: str) -> AppConfig:
    cfg = load_or_exit(config_path)
    configure_logging(cfg.logging.level, cfg.logging.format, stream=sys.stderr)
    return cfg


def open_store(cfg: AppConfig) -> CredentialStore:
    try:
        if cfg.store is not None:  # the pool's PostgreSQL (issue 22)
            from config.pgstore import StoreCredentials

            store: CredentialStore = StoreCredentials.from_settings(cfg.store)
        else:
            store = CredentialStore.open(cfg.paths)
        add_secrets(store.all_secret_values())
        return store
    except CredentialsError as exc:
        raise CliError(str(exc)) from None


def _check_user_id(user_id: str) -> str:
    user_id = user_id.strip()
    if not ID_RE.match(user_id):
        raise CliError(f"user id {user_id!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return user_id


@click.group("users")
def users() -> None:
    """Store, list, check and remove accounts' browser sessions."""


@users.command("add")
@click.argument("user_id")
@click.option(
    "--curl",
    "curl_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help='A request copied from the browser "as cURL" (bash or cmd form); - reads stdin.',
)
@click.option("--label", default=None, help="A name to recognise the account by.")
@config_option
@_guarded
def users_add(user_id: str, curl_file: TextIO, label: str | None, config_path: str) -> None:
    """Store the session of USER_ID from a "Copy as cURL" text."""
    cfg = _setup(config_path)
    user_id = _check_user_id(user_id)
    text = curl_file.read()
    try:
        creds = parse_curl(text)
    except CurlParseError as exc:
        raise CliError(f"the cURL text for user {user_id} cannot be used: {exc}") from None
    finally:
        del text
    add_secrets(creds.secret_values())
    store = open_store(cfg)
    try:
        store.put(user_id, creds, label=label)
    except CredentialsError as exc:
        raise CliError(str(exc)) from None
    named = f" ({label})" if label else ""
    echo(f"stored the session of user {user_id}{named}")
    echo(f"  cookies: {', '.join(sorted(creds.cookies))}")
    echo(f"  headers: {', '.join(sorted(creds.headers))}")
    echo(f"  store:   {store.path} ({'encrypted' if store.encrypted else 'PLAIN TEXT'})")
    if not store.encrypted:
        echo(
            f"alphavol: warning: the sessions are stored in plain text; {PLAINTEXT_HINT}", err=True
        )
    if user_id not in cfg.user_ids():
        echo(f"note: user {user_id} is in no enabled strategy of {config_path}", err=True)


@users.command("list")
@config_option
@_guarded
def users_list(config_path: str) -> None:
    """Show stored sessions: ids, labels, cookie names and dates (never a value)."""
    cfg = _setup(config_path)
    store = open_store(cfg)
    records = store.list()
    configured = set(cfg.user_ids())
    if not records:
        echo("no stored sessions")
    for r in records:
        echo(
            f"user {r.user_id}"
            + (f" ({r.label})" if r.label else "")
            + ("" if r.user_id in configured else " [not in an enabled strategy]")
        )
        echo(f"  cookies: {', '.join(r.cookie_names) or '-'}")
        echo(f"  headers: {', '.join(r.header_names) or '-'}")
        echo(
            f"  stored:  {r.stored_at} ({_age(r.stored_at)} ago)   last ok: {r.last_ok_at or 'never'}"
        )
    missing = [u for u in cfg.user_ids() if u not in {r.user_id for r in records}]
    if missing:
        echo(f"configured users without a session: {', '.join(missing)}")


def _age(stored_at: str) -> str:
    """How old a stored session is (the exchange logs one out after about 5 days)."""
    import time
    from datetime import datetime

    from config.output import age_text

    try:
        return age_text(time.time() - datetime.fromisoformat(stored_at).timestamp())
    except ValueError:
        return "?"


@users.command("remove")
@click.argument("user_id")
@config_option
@_guarded
def users_remove(user_id: str, config_path: str) -> None:
    """Delete the stored session of USER_ID."""
    cfg = _setup(config_path)
    user_id = _check_user_id(user_id)
    store = open_store(cfg)
    if not store.remove(user_id):
        raise CliError(f"no stored session for user {user_id}")
    echo(f"removed the session of user {user_id}")


@users.command("keygen")
@click.argument("key_file", type=click.Path(dir_okay=False))
@_guarded
def users_keygen(key_file: str) -> None:
    """Write a new encryption key to KEY_FILE (0600) for $ALPHAVOL_SECRET_KEY_FILE."""
    import os

    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{key_file} exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise CliError(f"cannot create {key_file}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(new_key() + b"\n")
    echo(f"wrote a new key to {key_file}; set ALPHAVOL_SECRET_KEY_FILE={key_file}")
    echo("an existing plain-text store is encrypted the first time it is opened with the key")


@users.command("check")
@click.argument("user_id", required=False)
@click.option("--online", is_flag=True, help="Ask the exchange whether each session is alive.")
@config_option
@_guarded
def users_check(user_id: str | None, online: bool, config_path: str) -> None:
    """Check stored sessions (offline; with --online, one user-volume call per user)."""
    cfg = _setup(config_path)
    store = open_store(cfg)
    if user_id is not None:
        ids = [_check_user_id(user_id)]
    else:
        ids = list(dict.fromkeys([*cfg.user_ids(), *(r.user_id for r in store.list())]))
    if not ids:
        echo("no users configured or stored")
        return
    bad = False
    usable: dict[str, Credentials] = {}
    for uid in ids:
        try:
            creds = store.get(uid).routed(cfg.proxy_for(uid))
        except CredentialsMissing:
            echo(f"user {uid}: missing: no stored session (alphavol users add {uid} --curl FILE)")
            bad = True
            continue
        except CredentialsError as exc:
            echo(f"user {uid}: unreadable: {exc}")
            bad = True
            continue
        problems = creds.problems()
        if problems:
            echo(f"user {uid}: invalid: {'; '.join(problems)}")
            bad = True
        elif online:
            usable[uid] = creds
        else:
            echo(f"user {uid}: ok (offline check)")
    if usable:
        from config.online import probe_sessions

        results = asyncio.run(probe_sessions(cfg.exchange, usable))
        for uid, (alive, text) in results.items():
            echo(f"user {uid}: {text}")
            if alive:
                store.mark_ok(uid)
            else:
                bad = True
    if bad:
        sys.exit(EXIT_OPERATOR)


def _notify_problems(cfg: AppConfig, where: Located) -> list[str]:
    """notify.urls that Apprise does not understand (named by position: a URL is a secret)."""
    if not cfg.notify.urls:
        return []
    from config.errors import format_path
    from config.service_sections import not_understood

    out = []
    for i in not_understood(cfg.notify.urls):
        path = ("notify", "urls", i)
        loc = (format_path(path), where.positions.value_line(path))
        out.append(where.issue(loc, "Apprise does not understand this URL (see its wiki)"))
    return out


@click.command("check")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
@click.option(
    "--online",
    is_flag=True,
    help="Also ask the exchange: every target token and chain, every stored session.",
)
@_guarded
def check(config_path: str, as_json: bool, online: bool) -> None:
    """Validate the config and that every configured user has a stored session (exit 2
    with every problem and its line otherwise); --online also asks the exchange."""
    from config.online import Located

    cfg = _setup(config_path)
    where = Located(cfg, config_path)
    problems: list[str] = []
    sessions: dict[str, Credentials] = {}
    try:
        store: CredentialStore | None = open_store(cfg)
    except CliError as exc:
        problems.append(exc.format_message())
        store = None
    if store is not None:
        sessions = _stored_sessions(cfg, store, where, problems)
    problems.extend(_notify_problems(cfg, where))
    if online:
        problems.extend(_online_problems(cfg, store, sessions, where))
    if as_json:
        say(msgspec.json.format(msgspec.json.encode(cfg.effective()), indent=2).decode())
    for p in problems:
        echo(p, err=True)
    if problems:
        echo(f"{len(problems)} problem(s); nothing was started.", err=True)
        sys.exit(EXIT_OPERATOR)
    if not as_json:
        echo(_config_ok(cfg, online))


def _stored_sessions(
    cfg: AppConfig, store: CredentialStore, where: Located, problems: list[str]
) -> dict[str, Credentials]:
    """The usable stored session of every configured user; a line in ``problems`` for
    each user whose session is missing, unreadable or incomplete."""
    sessions: dict[str, Credentials] = {}
    for uid in cfg.user_ids():
        try:
            creds = store.get(uid).routed(cfg.proxy_for(uid))
        except CredentialsMissing:
            strategies = ", ".join(s.strategy_id for s in cfg.for_user(uid))
            problems.append(
                where.issue(
                    where.user(uid),
                    f"user {uid} ({strategies}) has no stored session:"
                    f" alphavol users add {uid} --curl FILE",
                )
            )
            continue
        except CredentialsError as exc:
            problems.append(where.issue(where.user(uid), f"user {uid}: {exc}"))
            continue
        bad = creds.problems()
        problems.extend(where.issue(where.user(uid), f"user {uid}: {p}") for p in bad)
        if not bad:
            sessions[uid] = creds
    return sessions


def _online_problems(
    cfg: AppConfig,
    store: CredentialStore | None,
    sessions: dict[str, Credentials],
    where: Located,
) -> list[str]:
    """What the exchange says of the tokens, chains and sessions; the sessions it
    accepted are marked ok in the store."""
    from config.online import online_problems

    found, alive = asyncio.run(online_problems(cfg, sessions, where))
    if store is not None:
        for uid in alive:
            store.mark_ok(uid)
    return found


def _config_ok(cfg: AppConfig, online: bool) -> str:
    """The one line ``check`` says when all is well."""
    enabled = [s for s in cfg.strategies if s.enabled]
    return (
        f"config ok: {len(enabled)} enabled strateg{'y' if len(enabled) == 1 else 'ies'}"
        f" ({', '.join(s.strategy_id for s in enabled)}), {len(cfg.user_ids())} users,"
        " all with a stored session"
        + (
            "; the exchange lists every token and chain, and every session is alive"
            if online
            else ""
        )
    )
