"""Issue 20, item 8: a YAML syntax error in plain words, at the line of the mistake, through
`alphavol check` as an operator runs it. For indentation, the line to align with is named;
none of the parser's own words (``expected <block end>, but found ...``) reach the user."""

from __future__ import annotations

import pytest

from tests.cli.conftest import alphavol, clean_env

GOOD = """\
global_settings:
  max_concurrent_users: 3
exchange:
  base_url: http://127.0.0.1:9
  ws_url: ws://127.0.0.1:9/w3w/stream
paths:
  data_dir: ./data
  runtime_dir: ./run
strategies:
  - strategy_id: koge
    target_token: KOGE
    target_volume: 1000
    user_ids: [1, 2]
  - strategy_id: aop
    target_token: AOP
    target_volume: 500
    user_ids: [3]
user_overrides:
  - user_id: 1
    strategies:
      koge:
        single_trade_amount_usdt: 50
"""

# (what, line replaced -> its new text, the line reported, words of the explanation)
MISTAKES = [
    (
        "a key one space deeper than the keys of its section",
        {5: "   ws_url: ws://127.0.0.1:9/w3w/stream"},
        5,
        "'ws_url' is indented 3 spaces, but the keys before it under 'exchange' are indented 2"
        " ('base_url' on line 4): align it with them",
    ),
    (
        "a key of a list item one space shallower than the item's first key",
        {12: "   target_volume: 1000"},
        12,
        "'target_volume' is indented 3 spaces, but the keys before it in this list item are"
        " indented 4 ('strategy_id' on line 10)",
    ),
    (
        "a list item whose '-' is out of line with the one before",
        {14: "   - strategy_id: aop"},
        14,
        "align its '-' with the one on line 10 (2 spaces)",
    ),
    (
        "the first key of a section not indented (noticed by the parser one line later)",
        {7: "data_dir: ./data"},
        7,
        "'data_dir' is at the same indentation as 'paths' on line 6, which leaves 'paths'"
        " empty: indent it like 'runtime_dir' on line 8 (2 spaces)",
    ),
    (
        "the first key of a list item further right than the keys after it",
        {14: "  -   strategy_id: aop"},
        14,
        "'strategy_id' is indented 6 spaces, but the keys after it in this list item are"
        " indented 4",
    ),
    (
        "a key without its ':' (noticed by the parser one line later)",
        {11: "    target_token KOGE"},
        11,
        "'target_token KOGE' is not a 'key: value' pair: is the ':' missing",
    ),
    (
        "a tab in the indentation",
        {22: "\tsingle_trade_amount_usdt: 50"},
        22,
        "indented with a tab; YAML indentation must be spaces only",
    ),
    (
        "a key of a list item under its '-', in line with no key above it",
        {12: "  target_volume: 1000"},
        12,
        "'target_volume' is indented 2 spaces, which lines up with no key above it: align it"
        " with 'target_token' on line 11 (4 spaces) or with 'strategies' on line 9 (0 spaces)"
        " (or make it a list item: '- ...')",
    ),
    (
        "the keys after a list item's first key one space deeper than it",
        {
            11: "     target_token: KOGE",
            12: "     target_volume: 1000",
            13: "     user_ids: [1, 2]",
        },
        10,
        "'strategy_id' is indented 4 spaces, but the keys after it in this list item are"
        " indented 5 ('target_token' on line 11): indent its '-' 1 space more",
    ),
    (
        "a quote never closed",
        {11: "    target_token: 'KOGE"},
        11,
        "the quote ' opened here is never closed",
    ),
    (
        "a [ never closed",
        {13: "    user_ids: [1, 2"},
        13,
        "the [ opened here is never closed: a ] is missing",
    ),
    (
        "a [ closed by the wrong bracket",
        {13: "    user_ids: [1, 2}"},
        13,
        "inside [...], items must be separated by commas (or the ] is missing)",
    ),
    (
        "an alias of no anchor",
        {11: "    target_token: *koge"},
        11,
        "'*koge' refers to no anchor '&koge' above it",
    ),
    (
        "': ' inside a value",
        {11: "    target_token: KOGE: x"},
        11,
        "the value of 'target_token' contains ': '; put the value in quotes"
        ' (target_token: "...")',
    ),
    (
        "a section name without its ':'",
        {3: "exchange"},
        3,
        "'exchange' is not a 'key: value' pair: is the ':' missing, or the space after it?",
    ),
]

PARSER_WORDS = (
    "<block",
    "expected <",
    "mapping values are not allowed",
    "could not find expected",
    "did not find expected",
    "while scanning",
    "while parsing",
    "cannot start any token",
)


@pytest.mark.parametrize(("what", "edit", "line", "words"), MISTAKES, ids=[m[0] for m in MISTAKES])
async def test_a_yaml_mistake_is_named_in_plain_words_at_its_line(
    tmp_path, what, edit, line, words
):
    lines = GOOD.splitlines()
    for no, text in edit.items():
        lines[no - 1] = text
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    res = await alphavol("check", "--config", str(path), env=clean_env(), within=20)
    assert res.returncode == 2, res.stderr
    said = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert said[0].startswith(f"{path}:{line}: YAML syntax error: "), said
    assert words in said[0], said
    assert not [w for w in PARSER_WORDS if w in res.stderr], res.stderr
    assert "Traceback" not in res.stderr
