"""`python -m supervisor` is the `alphavol` command (used where the console script may not
be on PATH, e.g. by `alphavol demo` starting its subprocesses)."""

from supervisor.cli import main

main(prog_name="alphavol")
