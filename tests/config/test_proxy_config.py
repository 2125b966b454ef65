"""Issue 12: a user's ``proxy`` is written in its ``user_overrides`` entry beside its
``strategies``; a bad one is reported with its line, never with its password."""

from __future__ import annotations

import textwrap

import pytest

from config.loader import ConfigError, load_config

from .conftest import write_config

CONFIG = """\
strategies:
  - strategy_id: koge
    target_token: KOGE
    target_volume: 100
    user_ids: [1, 2]
user_overrides:
  - user_id: 2
    proxy: {proxy}
    strategies:
      koge:
        single_trade_amount_usdt: 20
"""


def test_each_user_has_its_own_proxy(tmp_path):
    cfg = load_config(write_config(tmp_path, CONFIG.format(proxy="socks5://al:pw1@127.0.0.1:1080")))
    assert cfg.proxy_for("2") == "socks5://al:pw1@127.0.0.1:1080"
    assert cfg.proxy_for("1") is None
    assert [s.single_trade_amount_usdt for s in cfg.for_user("2")] == [20]


@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("ftp://al:Secret77@127.0.0.1:21", "scheme 'ftp' is not supported"),
        ("socks5://al:Secret77@127.0.0.1", "port is missing"),
        ("'127.0.0.1:1080'", "must start with"),
    ],
)
def test_a_bad_proxy_names_its_line_not_its_password(tmp_path, proxy, words):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, CONFIG.format(proxy=proxy)))
    text = str(err.value)
    assert ":8: user_overrides[0].proxy: proxy of user 2:" in text and words in text, text
    assert "Secret77" not in text
    assert len(textwrap.dedent(text).splitlines()) == 1
