"""The `alphavol` command line."""

from __future__ import annotations

import click

from config.cli import check, users
from exchange.sim.cli import sim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alphavol")
def main() -> None:
    """alphavol: drive Binance Alpha accounts to a daily volume with OTO round trips."""


main.add_command(sim)
main.add_command(users)
main.add_command(check)
