"""Read a browser's "Copy as cURL" text into a ``Credentials`` (cookies + kept headers).

Chrome, Edge and Firefox produce two dialects: bash (single quotes, ``$'...'`` ANSI-C
strings, backslash line continuations) and Windows cmd (``^"...^"`` with ``^`` escapes and
``^`` line continuations, then the MS C runtime's quote rules). We split the text the way
the matching shell would, take ``-H``/``-b`` (and friends), keep the cookies and only the
headers in ``exchange.auth.KEPT_HEADERS``, and check the result with
``Credentials.problems()``. Error messages name what is wrong, never a value.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    for opt, value in _options(words):
        if opt in _HEADER_OPTS:
            found_any |= _add_header(value, cookies, headers)
        elif opt in _COOKIE_OPTS:
            found_any = True
            _add_cookies(value, cookies)
        elif opt in _UA_OPTS:
            found_any = True
            headers["user-agent"] = value.strip()
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


_TAKES_A_VALUE = {*_HEADER_OPTS, *_COOKIE_OPTS, *_UA_OPTS, *_VALUE_OPTS}


def _options(words: list[str]) -> Iterator[tuple[str, str]]:
    """Each option that takes a value, with its value (``-H v``, ``-Hv``, ``--header=v``);
    other words (the URL, flags such as --compressed) are passed over."""
    i = 0
    while i < len(words):
        opt, value = _option_word(words[i])
        if opt in _TAKES_A_VALUE:
            if value is None:
                if i + 1 >= len(words):
                    raise CurlParseError(f"the option {opt} at the end has no value")
                i += 1
                value = words[i]
            yield opt, value
        i += 1


def _option_word(word: str) -> tuple[str, str | None]:
    """(option, its value when written in the same word, else None)."""
    if word.startswith("--") and "=" in word:
        opt, value = word.split("=", 1)
        return opt, value
    if word[:2] in ("-H", "-b", "-A") and len(word) > 2:
        return word[:2], word[2:]
    return word, None


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
    word: list[str] | None = None  # the pieces of the word being read; None between words
    i = 0
    while i < len(text):
        if text[i] in " \t\n":
            if word is not None:
                words.append("".join(word))
            word, i = None, i + 1
            continue
        piece, i = _bash_piece(text, i)
        if piece is None:
            continue  # a line continuation joins lines and starts no word
        if word is None:
            word = []
        word.append(piece)
    if word is not None:
        words.append("".join(word))
    return words


def _bash_piece(text: str, i: int) -> tuple[str | None, int]:
    """What the character, quoted string or escape at ``i`` stands for (None: a line
    continuation), and where the next piece starts."""
    c = text[i]
    if c == "\\":
        return _bash_escape(text, i)
    if c == "'":
        return _single_quoted(text, i)
    if c == "$" and text.startswith("'", i + 1):
        return _ansi_c(text, i + 2)
    if c == '"':
        return _double_quoted(text, i)
    return c, i + 1


def _bash_escape(text: str, i: int) -> tuple[str | None, int]:
    """A backslash: the next character as it is, or a line continuation."""
    escaped = text[i + 1 : i + 2]  # "" when the text ends with the backslash
    return (None if escaped == "\n" else escaped), i + 2


def _single_quoted(text: str, i: int) -> tuple[str, int]:
    """A '...' string: everything up to the next quote, as it is."""
    end = text.find("'", i + 1)
    if end < 0:
        raise CurlParseError("unterminated single quote in the cURL text")
    return text[i + 1 : end], end + 1


def _double_quoted(text: str, i: int) -> tuple[str, int]:
    """A "..." string: a backslash escapes only " \\ $ ` and a newline (which it removes)."""
    out: list[str] = []
    i, n = i + 1, len(text)
    while i < n and text[i] != '"':
        if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$`\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    if i >= n:
        raise CurlParseError("unterminated double quote in the cURL text")
    return "".join(out), i + 1


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
    return _split_msvcrt(_undo_carets(text))


def _undo_carets(text: str) -> str:
    """cmd.exe's escapes: ^x is x; ^ at the end of a line joins it with the next line,
    whose first character is then literal."""
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
    return "".join(plain)


def _split_msvcrt(s: str) -> list[str]:
    """Split as the MS C runtime does: "..." groups, backslashes count only before a quote."""
    words: list[str] = []
    cur: list[str] = []
    in_word = in_quotes = False
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            text, i = _backslashes(s, i)
            cur.append(text)
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


def _backslashes(s: str, i: int) -> tuple[str, int]:
    """A run of backslashes at ``i``: before a quote, each pair is one backslash and an
    odd one escapes the quote (else the quote is read next, as an opening or closing
    one); elsewhere they are literal. Returns (the text, where reading goes on)."""
    j = i
    while j < len(s) and s[j] == "\\":
        j += 1
    count = j - i
    if j < len(s) and s[j] == '"':
        if count % 2:
            return "\\" * (count // 2) + '"', j + 1
        return "\\" * (count // 2), j
    return "\\" * count, j
