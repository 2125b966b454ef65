"""Refuse to run when one of alphavol's import packages belongs to another distribution.

alphavol's packages have generic names (``supervisor``, ``config``, ``exchange``,
``protocol``, ``userproc``). Installing an unrelated project with one of those names into
the same environment (``pip install supervisor`` is supervisord) overwrites or shadows
ours, and alphavol would then run somebody else's code. At CLI start each package's
``__init__.py`` is checked against alphavol's own install record (file hash, or the
source tree of an editable install); only when that fails are the other distributions'
records searched (importlib.metadata) for the file, and a foreign owner is one clear line
and exit 2.

Standard library only: this runs before anything else of ours is imported.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

PACKAGES = ("config", "exchange", "protocol", "supervisor", "userproc")
DISTRIBUTION = "alphavol"


def _origin(name: str) -> Path | None:
    module = sys.modules.get(name)
    spec = module.__spec__ if module is not None else importlib.util.find_spec(name)
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    return Path(spec.origin).resolve()


def _hash_ok(path: Path, recorded: str) -> bool:
    """``recorded`` is a RECORD hash, ``sha256=<urlsafe base64, no padding>``."""
    mode, _, value = recorded.partition("=")
    if not value:
        return True
    try:
        digest = hashlib.new(mode, path.read_bytes()).digest()
    except (OSError, ValueError):
        return False
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == value


def _dist_info() -> Path | None:
    """alphavol's ``.dist-info`` directory, found the way importlib.metadata finds it (the
    first on sys.path), without importing importlib.metadata (and email) on every start."""
    for entry in sys.path:
        base = Path(entry or ".")
        try:
            found = sorted(base.glob(f"{DISTRIBUTION}-*.dist-info"))
        except OSError:
            continue
        if found:
            return found[0]
    return None


class _Ours:
    """What alphavol's own install record says about its package files."""

    def __init__(self) -> None:
        self.records: dict[Path, str] = {}
        self.editable_root: Path | None = None
        info = _dist_info()
        if info is None:  # run from a source tree: nothing to compare with
            return
        try:
            rows = list(csv.reader((info / "RECORD").read_text(encoding="utf-8").splitlines()))
        except OSError:
            rows = []
        for row in rows:
            parts = Path(row[0]).parts if row else ()
            if len(parts) == 2 and parts[0] in PACKAGES and parts[1] == "__init__.py":
                self.records[(info.parent / row[0]).resolve()] = row[1] if len(row) > 1 else ""
        try:
            direct = json.loads((info / "direct_url.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            direct = {}
        url = str(direct.get("url", ""))
        if direct.get("dir_info", {}).get("editable") and url.startswith("file:"):
            self.editable_root = Path(unquote(urlparse(url).path)).resolve()

    def owns(self, origin: Path) -> bool:
        if origin in self.records:
            return _hash_ok(origin, self.records[origin])
        return self.editable_root is not None and origin.is_relative_to(self.editable_root)


def foreign_owner(origin: Path, package: str) -> str | None:
    """``name version`` of the distribution (not alphavol) whose record lists ``origin``."""
    import importlib.metadata as md

    for dist in md.distributions():
        name = dist.metadata["Name"] or "?"
        if name.lower().replace("_", "-") == DISTRIBUTION:
            continue
        for f in dist.files or []:
            if f.parts == (package, "__init__.py"):
                if Path(str(dist.locate_file(f))).resolve() == origin:
                    return f"{name} {dist.version}"
    return None


def foreign_packages() -> list[str]:
    """One sentence per alphavol package that resolves to another distribution's file."""
    ours = _Ours()
    problems = []
    for package in PACKAGES:
        origin = _origin(package)
        if origin is None or ours.owns(origin):
            continue
        owner = foreign_owner(origin, package)
        if owner is not None:
            problems.append(
                f"the package '{package}' ({origin}) belongs to the distribution '{owner}',"
                " not to alphavol"
            )
    return problems


def refuse_foreign_packages() -> None:
    """Exit 2 with one line when alphavol's packages are not alphavol's (see above)."""
    problems = foreign_packages()
    if problems:
        sys.stderr.write(
            f"alphavol: {'; '.join(problems)}: another project with the same package name"
            " was installed into this environment. Install alphavol into an environment of"
            " its own (`pipx install`, or the venv of the README's systemd section).\n"
        )
        sys.exit(2)
