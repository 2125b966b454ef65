"""The dashboard section (issue 23): off by default, what loads, what is refused and where."""

from __future__ import annotations

from click.testing import CliRunner

from config.cli import check

from .conftest import MINIMAL, refused, write_config
from .conftest import load_minimal as load


def issues(tmp_path, extra: str) -> dict[str, str]:
    return {i.path: i.message for i in refused(tmp_path, extra)}


def test_off_by_default_and_a_relative_token_file_is_next_to_the_config(tmp_path):
    plain = load(tmp_path, "")
    assert plain.dashboard.listen is None and plain.dashboard.session_warn_hours == 96
    cfg = load(
        tmp_path,
        "dashboard:\n  listen: 127.0.0.1:8780\n  token_file: dash.token\n"
        "  session_warn_hours: 72\n",
    )
    assert (cfg.dashboard.host, cfg.dashboard.port) == ("127.0.0.1", 8780)
    assert cfg.dashboard.token_file == str((tmp_path / "dash.token").resolve())
    assert cfg.dashboard.session_warn_hours == 72


def test_mistakes_are_named_with_their_key(tmp_path):
    found = issues(tmp_path, "dashboard:\n  listen: 127.0.0.1:8780\n")
    assert "needs token_file" in found["dashboard"]
    for bad in ("8780", "127.0.0.1:0", "127.0.0.1:web"):
        found = issues(tmp_path, f"dashboard:\n  listen: '{bad}'\n  token_file: t\n")
        assert "HOST:PORT" in found["dashboard.listen"]
    found = issues(tmp_path, "dashboard:\n  session_warn_hours: 0\n  tokenfile: t\n")
    assert "session_warn_hours" in " ".join(found)
    assert "did you mean 'token_file'" in found["dashboard.tokenfile"]


def test_check_refuses_a_broken_section_with_one_line_and_exit_2(tmp_path):
    path = write_config(tmp_path, MINIMAL + "dashboard:\n  listen: nowhere\n")
    res = CliRunner().invoke(check, ["--config", str(path)])
    assert res.exit_code == 2
    assert "dashboard.listen" in res.output and "HOST:PORT" in res.output
