"""Logging output: JSON lines off a terminal, console on one, levels, and redaction."""

from __future__ import annotations

import io
import json
import logging

import structlog

from config.logsetup import add_secrets, configure_logging, redact


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_when_not_a_tty_with_levels():
    buf = io.StringIO()
    configure_logging("INFO", "auto", stream=buf)
    log = structlog.get_logger("alphavol.test")
    log.debug("http_request", method="GET", path="/x")  # below INFO: dropped
    log.info("trade_done", user_id="1", amount="30")
    logging.getLogger("aiohttp.client").warning("stdlib %s", "line")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [(r["event"], r["level"]) for r in lines] == [
        ("trade_done", "info"),
        ("stdlib line", "warning"),
    ]
    assert lines[0]["user_id"] == "1" and "timestamp" in lines[0]


def test_console_on_a_tty_and_debug_level():
    buf = _Tty()
    configure_logging("DEBUG", "auto", stream=buf)
    structlog.get_logger("t").debug("http_request", method="GET", path="/bapi/x", status=200)
    out = buf.getvalue()
    assert "http_request" in out and "path=/bapi/x" in out
    assert not out.lstrip().startswith("{")


def test_configuring_twice_does_not_duplicate_lines():
    buf = io.StringIO()
    configure_logging("INFO", "json", stream=io.StringIO())
    configure_logging("INFO", "json", stream=buf)
    structlog.get_logger("t").info("once")
    assert buf.getvalue().count('"once"') == 1


def test_registered_secrets_and_cookie_like_text_are_masked():
    add_secrets(["REGISTEREDSECRET-xyz-42", "abc"])  # "abc" is too short to mask
    assert redact("token REGISTEREDSECRET-xyz-42 and abc") == "token *** and abc"
    assert "NEVERREGISTERED1" not in redact("Cookie: p20t=NEVERREGISTERED1; lang=en")
    assert "HEXHEXHEX" not in redact('{"csrftoken": "HEXHEXHEX"}')
    assert "HEXHEXHEX" not in redact("-H 'csrftoken: HEXHEXHEX'")
    assert redact("the header 'csrftoken' is missing") == "the header 'csrftoken' is missing"
