"""`alphavol sim`: run the simulated exchange in the foreground (stub, filled by issue 2)."""

import click


@click.command("sim")
def sim() -> None:
    """Run the simulated Binance Alpha exchange."""
    raise click.ClickException("not implemented yet")
