"""`alphavol init [PATH]`: write the commented example config (package data), and with
``--unit FILE`` the systemd unit, so that an installed alphavol (a wheel, pipx) needs
nothing from the source tree. Never overwrites a file without ``--force``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from config.cli import DEFAULT_CONFIG
from config.loader import example_config_path
from config.output import CliError, say


def unit_file_path() -> Path:
    """The systemd unit shipped inside the package."""
    return example_config_path().with_name("alphavol.service")


def _write(source: Path, dest: Path, *, force: bool, mode: int) -> None:
    if dest.is_dir():
        raise CliError(f"{dest} is a directory; give the file to write")
    if dest.exists() and not force:
        raise CliError(f"{dest} exists; refusing to overwrite it (--force does)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(source.read_bytes())
    os.chmod(tmp, mode)
    tmp.replace(dest)


@click.command("init")
@click.argument("path", required=False, type=click.Path(), envvar="ALPHAVOL_CONFIG")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option(
    "--unit",
    "unit",
    type=click.Path(dir_okay=False),
    help="Also write the systemd unit to this file (e.g. /etc/systemd/system/alphavol.service).",
)
def init(path: str | None, force: bool, unit: str | None) -> None:
    """Write the commented example config to PATH (default: $ALPHAVOL_CONFIG, else
    config/trading_config.yaml): edit it, store sessions with `alphavol users add`,
    `alphavol check`, then `alphavol run`."""
    dest = Path(os.path.expanduser(path or DEFAULT_CONFIG))
    _write(example_config_path(), dest, force=force, mode=0o640)
    say(f"wrote the example config to {dest}")
    if unit:
        _write(unit_file_path(), Path(unit), force=force, mode=0o644)
        say(f"wrote the systemd unit to {unit}")
    flag = "" if path is None else f" --config {dest}"
    say(
        "next: edit it (strategies, user ids; exchange: to rehearse on `alphavol sim`), then\n"
        f"  alphavol users add 1 --curl request.txt{flag}\n"
        f"  alphavol check --online{flag}\n"
        f"  alphavol run{flag}"
    )
