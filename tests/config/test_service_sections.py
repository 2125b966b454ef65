"""The notify and metrics sections: what loads, what is refused and where, and that a
notify URL's token never shows in a message about it."""

from __future__ import annotations

from config.logsetup import redact
from config.service_sections import channel_label
from config.settings import DEFAULT_NOTIFY_EVENTS

from .conftest import MINIMAL, write_config
from .conftest import load_minimal as load
from .conftest import refused as issues

TG = "tgram://123456789:AAF-TeLeGrAmBoTt0k3nXyZ/4242"
HOOK = "jsons://hooks.example.com/services/T0KEN-PART-ABCDEF"


def test_both_sections_load_and_default_to_off(tmp_path):
    plain = load(tmp_path, "")
    assert plain.notify.urls == () and plain.metrics.listen is None
    cfg = load(
        tmp_path,
        f"notify:\n  urls: ['{TG}', '{HOOK}']\n  retries: 2\nmetrics:\n  listen: 127.0.0.1:9464\n",
    )
    assert cfg.notify.urls == (TG, HOOK) and cfg.notify.retries == 2
    assert cfg.notify.events == DEFAULT_NOTIFY_EVENTS and "trade" not in cfg.notify.events
    assert "session_expired" in cfg.notify.events and "daily_summary" in cfg.notify.events
    assert (cfg.metrics.host, cfg.metrics.port) == ("127.0.0.1", 9464)


def test_the_tokens_of_notify_urls_are_masked_once_the_config_is_read(tmp_path):
    load(tmp_path, f"notify:\n  urls: ['{TG}', '{HOOK}']\n")
    line = redact(f"sending to {TG} and https://hooks.example.com/services/T0KEN-PART-ABCDEF")
    assert "AAF-TeLeGrAmBoTt0k3nXyZ" not in line and "T0KEN-PART-ABCDEF" not in line
    assert "hooks.example.com" in line  # a host name is not a secret
    assert redact("order 123456789 filled") == "order 123456789 filled"  # nor a chat id
    assert channel_label(0, TG) == "#1 tgram://"  # the bot token sits where a host would
    assert channel_label(1, HOOK) == "#2 jsons://hooks.example.com"


def test_a_bad_url_is_named_by_position_never_quoted(tmp_path):
    secret = "not-a-url-but-a-S3CRET-token"
    (issue,) = issues(tmp_path, f"notify:\n  urls:\n    - {TG}\n    - {secret}\n")
    assert issue.path == "notify.urls[1]" and issue.line is not None
    assert secret not in issue.message and "Apprise URL" in issue.message
    assert secret not in redact(f"x {secret} y")  # masked from now on, just in case


def test_unknown_events_and_keys_get_a_did_you_mean(tmp_path):
    found = issues(tmp_path, "notify:\n  events: [sesion_expired, service]\n  retry: 2\n")
    text = {i.path: i.message for i in found}
    assert "did you mean 'session_expired'" in text["notify.events[0]"]
    assert "did you mean 'retries'" in text["notify.retry"]


def test_metrics_off_loopback_needs_allow_remote(tmp_path):
    (issue,) = issues(tmp_path, "metrics:\n  listen: 0.0.0.0:9464\n")
    assert issue.path == "metrics.listen" and "allow_remote" in issue.message
    cfg = load(tmp_path, "metrics:\n  listen: 0.0.0.0:9464\n  allow_remote: true\n")
    assert cfg.metrics.allow_remote and cfg.metrics.host == "0.0.0.0"
    assert load(tmp_path, "metrics:\n  listen: localhost:9464\n").metrics.port == 9464
    for bad in ("9464", "127.0.0.1:0", "127.0.0.1:http"):
        (issue,) = issues(tmp_path, f"metrics:\n  listen: '{bad}'\n")
        assert "HOST:PORT" in issue.message


def test_check_asks_apprise_about_every_url_without_showing_it(tmp_path):
    from click.testing import CliRunner

    from config.cli import check

    odd = "nosuchservice://S3CRET-in-an-odd-url"
    path = write_config(tmp_path, MINIMAL + f"notify:\n  urls:\n    - {TG}\n    - {odd}\n")
    res = CliRunner().invoke(check, ["--config", str(path)])
    assert res.exit_code == 2
    (line,) = [x for x in res.output.splitlines() if "notify.urls" in x]
    assert "notify.urls[1]" in line and "Apprise does not understand" in line
    assert "S3CRET-in-an-odd-url" not in res.output and "AAF-TeLeGrAmBoTt0k3nXyZ" not in res.output
