"""``python -m userproc``: read a msgpack-encoded UserSpec from stdin and run it.

How tests and benchmarks start a real user process; credentials travel on the private
stdin pipe, never on argv or in the environment.
"""

from __future__ import annotations

import sys

import msgspec

from userproc.main import child_main
from userproc.spec import UserSpec


def main() -> None:
    data = sys.stdin.buffer.read()
    spec = msgspec.msgpack.decode(data, type=UserSpec)
    child_main(spec)


if __name__ == "__main__":
    main()
