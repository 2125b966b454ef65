"""Read a browser's "Copy as cURL" text into a ``Credentials`` (cookies + kept headers).

Chrome, Edge and Firefox produce two dialects: bash (single quotes, ``$'...'`` ANSI-C
strings, backslash line continuations) and Windows cmd (``^"...^"`` with ``^`` escapes and
``^`` line continuations, then the MS C runtime's quote rules). We split the text the way
the matching shell would, take ``-H``/``-b`` (and friends), keep the cookies and only the
headers in ``exchange.auth.KEPT_HEADERS``, and check the result with
``Credentials.problems()``. Error messages name what is wrong, never a value.
"""

from __future__ import annotations

from exchange.auth import KEPT_HEADERS, Credentials

_HEADER_OPTS = ("-H", "--header")
_COOKIE_OPTS = ("-b", "--cookie")
_UA_OPTS = ("-A", "--user-agent")
# Options whose next word is their value (skipped, so a value is never taken for a flag).
_VALUE_OPTS = {
    "-X", "--request", "-d", "--data", "--data-raw", "--data-binary", "--data-ascii",
    "--data-urlencode", "-e", "--referer", "-o", "--output", "-u", "--user", "--url",
    "-x", "--proxy", "-m", "--max-time", "--connect-timeout", "-F", "--form",
}  # fmt: skip


class CurlParseError(ValueError):
    """The text is not a usable "Copy as cURL" of a logged-in request."""


def parse_curl(text: str) -> Credentials:
    """Parse bash or Windows-cmd "Copy as cURL" text; raises CurlParseError."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise CurlParseError("the cURL text is empty")
    words = _split_cmd(text) if _looks_like_cmd(text) else _split_bash(text)
    cookies: dict[str, str] = {}
    headers: dict[str, str] = {}
    found_any = False
    i = 0
    while i < len(words):
        word = words[i]
        opt, value = word, None
        if word.startswith("--") and "=" in word:
            opt, value = word.split("=", 1)
        elif word[:2] in ("-H", "-b", "-A") and len(word) > 2:
            opt, value = word[:2], word[2:]
        if opt in _HEADER_OPTS + _COOKIE_OPTS + _UA_OPTS or opt in _VALUE_OPTS:
            if value is None:
                if i + 1 >= len(words):
                    raise CurlParseError(f"the option {opt} at the end has no value")
                value = words[i + 1]
                i += 1
            if opt in _HEADER_OPTS:
                found_any |= _add_header(value, cookies, headers)
            elif opt in _COOKIE_OPTS:
                found_any = True
                _add_cookies(value, cookies)
            elif opt in _UA_OPTS:
                found_any = True
                headers["user-agent"] = value.strip()
        i += 1
    if not found_any:
        raise CurlParseError(
            "no headers or cookies found: copy a request to www.binance.com with the browser's"
            " developer tools (Network tab, right click, Copy as cURL)"
        )
    creds = Credentials(cookies=cookies, headers=headers)
    problems = creds.problems()
    if problems:
        raise CurlParseError("; ".join(problems))
    return creds


def _add_header(line: str, cookies: dict[str, str], headers: dict[str, str]) -> bool:
    name, sep, value = line.partition(":")
    if not sep:
        return False
    name = name.strip().lower()
    value = value.strip()
    if name == "cookie":
        _add_cookies(value, cookies)
    elif name in KEPT_HEADERS and value:
        headers[name] = value
    return True


def _add_cookies(text: str, cookies: dict[str, str]) -> None:
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name.strip():
            cookies[name.strip()] = value.strip()


def _looks_like_cmd(text: str) -> bool:
    return '^"' in text or text.rstrip().endswith("^") or "^\n" in text


def _split_bash(text: str) -> list[str]:
    """Split like bash: quotes, backslash escapes and continuations, $'...' strings."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\n":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
        elif c == "\\":
            if i + 1 < n and text[i + 1] == "\n":  # line continuation
                i += 2
                continue
            if i + 1 < n:
                cur.append(text[i + 1])
            in_word = True
            i += 2
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise CurlParseError("unterminated single quote in the cURL text")
            cur.append(text[i + 1 : end])
            in_word = True
            i = end + 1
        elif c == "$" and i + 1 < n and text[i + 1] == "'":
            value, i = _ansi_c(text, i + 2)
            cur.append(value)
            in_word = True
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$`\n':
                    if text[i + 1] != "\n":
                        cur.append(text[i + 1])
                    i += 2
                else:
                    cur.append(text[i])
                    i += 1
            if i >= n:
                raise CurlParseError("unterminated double quote in the cURL text")
            in_word = True
            i += 1
        else:
            cur.append(c)
            in_word = True
            i += 1
    if in_word:
        words.append("".join(cur))
    return words


_SIMPLE_ESCAPES = {
    "n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", '"': '"', "a": "\a",
    "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "v": "\v", "?": "?",
}  # fmt: skip


def _ansi_c(text: str, i: int) -> tuple[str, int]:
    """Decode a bash $'...' body starting at ``i``; returns (value, index after the quote)."""
    out: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "'":
            return "".join(out), i + 1
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = text[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            j = i + 2
            while j < n and j < i + 2 + width and text[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                out.append("\\" + e)
            else:
                out.append(chr(int(text[i + 2 : j], 16)))
            i = j
        elif e in "01234567":
            j = i + 1
            while j < n and j < i + 4 and text[j] in "01234567":
                j += 1
            out.append(chr(int(text[i + 1 : j], 8)))
            i = j
        else:
            out.append("\\" + e)
            i += 2
    raise CurlParseError("unterminated $'...' string in the cURL text")


def _split_cmd(text: str) -> list[str]:
    """Undo cmd.exe's caret escapes, then split by the MS C runtime's argument rules."""
    plain: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "^" and i + 1 < n:
            if text[i + 1] == "\n":  # continuation: drop the newline, next char is literal
                if i + 2 < n:
                    plain.append(text[i + 2])
                i += 3
            else:
                plain.append(text[i + 1])
                i += 2
        else:
            plain.append(c)
            i += 1
    s = "".join(plain)
    words: list[str] = []
    cur: list[str] = []
    in_word = in_quotes = False
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            j = i
            while j < n and s[j] == "\\":
                j += 1
            count = j - i
            if j < n and s[j] == '"':
                cur.append("\\" * (count // 2))
                if count % 2:
                    cur.append('"')
                    i = j + 1
                else:
                    i = j  # the quote toggles below
            else:
                cur.append("\\" * count)
                i = j
            in_word = True
            continue
        if c == '"':
            in_quotes = not in_quotes
            in_word = True
        elif c in " \t\n" and not in_quotes:
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            cur.append(c)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    return words
