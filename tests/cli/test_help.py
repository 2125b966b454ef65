"""Every `--help` of the installed `alphavol` reads as help: the whole click command tree
(every group and subcommand, recursively), each run as its own subprocess through a pipe,
and the commands an operator meets first also on a real terminal (a pty).

They once all printed ``b''b"Usage: alphavol run ..."``: click probed whether stdout was
a binary stream by writing ``b""`` to it, and the redacting stream took the bytes."""

from __future__ import annotations

import asyncio

import click

from supervisor.cli import main
from tests.cli.conftest import ALPHAVOL, clean_env
from tests.cli.test_views import _run_on_a_terminal


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under ``group`` as the words that name it, groups included."""
    ctx = click.Context(group, info_name="alphavol")
    out: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(command_paths(cmd, (*prefix, name)))
    return out


def assert_is_help(words: tuple[str, ...], code: int, out: str) -> None:
    what = " ".join(("alphavol", *words, "--help"))
    assert code == 0, f"{what}: exit {code}\n{out}"
    assert out.startswith(f"Usage: {' '.join(('alphavol', *words))}"), f"{what}:\n{out[:300]}"
    assert "b'" not in out and 'b"' not in out, f"{what}:\n{out[:300]}"
    assert "\\n" not in out, f"{what}: a repr, not text:\n{out[:300]}"


async def test_every_help_in_the_command_tree_is_readable_text():
    paths = [(), *command_paths(main)]
    # the tree as an operator knows it: nested groups are walked too
    assert {("run",), ("sim",), ("status",), ("check",), ("users", "add")} <= set(paths)
    limit = asyncio.Semaphore(3)  # a shared machine

    async def helps(words: tuple[str, ...]) -> tuple[tuple[str, ...], int, str]:
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                ALPHAVOL,
                *words,
                "--help",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=clean_env(),
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            return words, proc.returncode or 0, out.decode(errors="replace")

    for words, code, out in await asyncio.gather(*(helps(p) for p in paths)):
        assert_is_help(words, code, out)


def test_help_on_a_terminal_is_readable_text(tmp_path):
    for words in (("run",), ("users", "add"), ("status",)):
        out = _run_on_a_terminal([*words, "--help"], clean_env(), tmp_path, within=30)
        assert_is_help(words, 0, out.replace("\r\n", "\n"))
