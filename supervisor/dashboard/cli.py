"""``alphavol dashboard token FILE``: a new random token for ``dashboard.token_file``."""

from __future__ import annotations

import os

import click

from config.output import CliError, say
from supervisor.dashboard.token import new_token


@click.group("dashboard")
def dashboard() -> None:
    """The web dashboard (the config's dashboard section)."""


@dashboard.command("token")
@click.argument("token_file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing token (a restart applies it).")
def token(token_file: str, force: bool) -> None:
    """Write a new random token to TOKEN_FILE (mode 0600) for dashboard.token_file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(token_file, flags, 0o600)
    except FileExistsError:
        raise CliError(f"{token_file} exists; refusing to overwrite a token (--force)") from None
    except OSError as exc:
        raise CliError(f"cannot create {token_file}: {exc.strerror}") from None
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new_token() + "\n")
    say(f"wrote a new dashboard token to {token_file} (mode 0600)")
    say("set dashboard.token_file to it; log in with its content, or send it to the API as")
    say("  Authorization: Bearer TOKEN")
