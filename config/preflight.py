"""Before the supervisor starts: its two directories exist and can be written.

A read-only data directory would otherwise surface much later (a journal that cannot be
created when the first user starts) as a crash and a restart loop; here it is one line
naming the directory and the setting, and exit status 2.
"""

from __future__ import annotations

import os
import tempfile

from config.settings import PathSettings


def require_writable_dirs(paths: PathSettings) -> None:
    """Create ``data_dir`` and ``runtime_dir`` (0700) if missing and prove both writable;
    raises ``OSError`` whose filename names the directory and its setting."""
    for setting, directory in (
        ("paths.data_dir", paths.data),
        ("paths.runtime_dir", paths.runtime),
    ):
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, probe = tempfile.mkstemp(dir=directory, prefix=".alphavol-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"{directory} ({setting})") from None
