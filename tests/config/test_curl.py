"""Reading "Copy as cURL" text from Chrome/Firefox in bash and Windows cmd form."""

from __future__ import annotations

import pytest

from config.curl import CurlParseError, parse_curl
from exchange.auth import KEPT_HEADERS, csrf_for

from .conftest import SESSION_COOKIES, SESSION_HEADERS, bash_curl, secret_values


def test_bash_form_keeps_cookies_and_only_the_kept_headers():
    creds = parse_curl(bash_curl())
    assert creds.cookies == SESSION_COOKIES
    assert {k: creds.headers[k] for k in SESSION_HEADERS} == SESSION_HEADERS
    assert creds.headers["user-agent"].startswith("Mozilla/5.0 (X11")
    assert set(creds.headers) <= set(KEPT_HEADERS)
    assert "accept" not in creds.headers and "content-type" not in creds.headers
    assert creds.problems() == []


def test_bash_ansi_c_strings_cookie_header_and_continuations():
    cr00 = "ANSICR00VALUE123456"
    text = (
        "curl $'https://www.binance.com/bapi/x' \\\n"
        f"  -H $'cookie: p20t=web.1.it\\'sSESSION; cr00={cr00}' \\\n"
        f'  -H "csrftoken: {csrf_for(cr00)}" \\\n'
        "  -H $'user-agent: Mozilla/5.0 \\u00e9\\x41' \\\n"
        "  -H 'Lang: en' --data-raw '{\"a\":1}'\n"
    )
    creds = parse_curl(text)
    assert creds.cookies == {"p20t": "web.1.it'sSESSION", "cr00": cr00}
    assert creds.headers["user-agent"] == "Mozilla/5.0 éA"
    assert creds.headers["lang"] == "en"  # header names are lower-cased


def test_windows_cmd_form():
    cr00 = SESSION_COOKIES["cr00"]
    cookie = "; ".join(f"{k}={v}" for k, v in SESSION_COOKIES.items())
    text = (
        'curl ^"https://www.binance.com/bapi/defi/v1/private/alpha-trade/get-listen-key^" ^\r\n'
        '  -X ^"POST^" ^\r\n'
        '  -H ^"accept: */*^" ^\r\n'
        f'  -b ^"{cookie}; theme=^%^22dark^%^22^" ^\r\n'
        f'  -H ^"csrftoken: {csrf_for(cr00)}^" ^\r\n'
        '  -H ^"clienttype: web^" ^\r\n'
        '  -H ^"user-agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) ^\\^"quoted^\\^"^" ^\r\n'
        '  --data-raw ^"^{^}^"\r\n'
    )
    creds = parse_curl(text)
    assert creds.cookies == SESSION_COOKIES | {"theme": "%22dark%22"}
    assert creds.headers["csrftoken"] == csrf_for(cr00)
    assert creds.headers["clienttype"] == "web"
    assert creds.headers["user-agent"] == 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) "quoted"'


@pytest.mark.parametrize(
    ("cookies", "headers", "words"),
    [
        ({k: v for k, v in SESSION_COOKIES.items() if k != "p20t"}, SESSION_HEADERS, "'p20t'"),
        ({k: v for k, v in SESSION_COOKIES.items() if k != "cr00"}, SESSION_HEADERS, "'cr00'"),
        (SESSION_COOKIES, {**SESSION_HEADERS, "csrftoken": csrf_for("other")}, "not the MD5"),
        (
            SESSION_COOKIES,
            {k: v for k, v in SESSION_HEADERS.items() if k != "csrftoken"},
            "'csrftoken' is missing",
        ),
    ],
    ids=["no session cookie", "no cr00", "csrf mismatch", "no csrftoken"],
)
def test_problems_are_named_without_values(cookies, headers, words):
    with pytest.raises(CurlParseError) as err:
        parse_curl(bash_curl(cookies, headers))
    message = str(err.value)
    assert words in message
    for value in secret_values():
        assert value not in message


def test_text_without_headers_or_cookies_is_rejected():
    with pytest.raises(CurlParseError, match="no headers or cookies"):
        parse_curl("curl 'https://www.binance.com/'")
    with pytest.raises(CurlParseError, match="empty"):
        parse_curl("  \n")
    with pytest.raises(CurlParseError, match="unterminated"):
        parse_curl("curl -H 'cookie: p20t=abc")
