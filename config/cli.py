"""`alphavol users ...` and `alphavol check` (stub, filled by issue 3)."""

import click

config_option = click.option(
    "--config",
    "config_path",
    envvar="ALPHAVOL_CONFIG",
    default="config/trading_config.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The YAML config file (also $ALPHAVOL_CONFIG).",
)


@click.group("users")
def users() -> None:
    """Store, list, check and remove accounts' browser sessions."""


@click.command("check")
@config_option
def check(config_path: str) -> None:
    """Validate the config and credentials."""
    raise click.ClickException("not implemented yet")
