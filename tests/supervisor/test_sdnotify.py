"""sd_notify over a real Unix datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket

from supervisor.sdnotify import Notifier


def _recv(sock: socket.socket) -> list[str]:
    sock.settimeout(2)
    return sock.recv(4096).decode().split("\n")


def test_lines_reach_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        n = Notifier(env={"NOTIFY_SOCKET": path})
        assert n.ready("up")
        assert _recv(srv) == ["READY=1", "STATUS=up"]
        n.status("2/3 users running\nx")
        assert _recv(srv) == ["STATUS=2/3 users running x"]
        n.reloading()
        lines = _recv(srv)
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        n.watchdog()
        assert _recv(srv) == ["WATCHDOG=1"]
        n.stopping()
        assert _recv(srv) == ["STOPPING=1"]
        n.close()


def test_abstract_socket_and_watchdog_interval():
    name = f"alphavol-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind("\0" + name)
        n = Notifier(env={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000"})
        assert n.watchdog_interval == 2.0
        assert n.ready()
        assert _recv(srv) == ["READY=1"]


def test_without_systemd_everything_is_a_no_op():
    n = Notifier(env={})
    assert not n.enabled
    assert not n.ready() and not n.stopping()
    # watchdog meant for another pid is ignored
    assert Notifier(env={"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval is None
