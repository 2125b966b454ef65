"""Issue 23: the web dashboard, in a real browser, on a real supervisor whose users trade
on the simulated exchange."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import time
from decimal import Decimal

import aiohttp

from supervisor import render
from tests.dashboard.conftest import Browser, Dash
from tests.notify_receiver import TOKEN as NOTIFY_TOKEN
from tests.notify_receiver import Receiver
from tests.passproxy import PasswordProxy
from tests.supervisor.harness import ALPHAVOL, strategy
from tests.supervisor.test_real_users import FAST

# session cookies as long as real ones: every value is worth looking for
ACCOUNTS = {
    "1": "dash-session-of-user-one-0123456789",
    "2": "dash-session-of-user-two-9876543210",
    "3": "dash-session-of-user-three-5550001",
}

PROXY_PASSWORD = "proxy-pw-planted-dash-0123456"

# what the page shows of every user's strategy row, the user's block and each strategy
PAGE_FIGURES = """
const f = (root, name) => root.querySelector(`[data-field="${name}"]`).textContent;
const rows = {}, users = {}, strategies = {};
for (const r of document.querySelectorAll('.row[data-user]')) {
  rows[r.dataset.user + '/' + r.dataset.strategy] = {
    state: f(r, 'state'), current_volume: f(r, 'current_volume'),
    unconfirmed_volume: f(r, 'unconfirmed_volume'),
    target_volume: f(r, 'target_volume'), trades: f(r, 'trades'), cost_today: f(r, 'cost_today')};
}
for (const u of document.querySelectorAll('.user[data-user]')) {
  users[u.dataset.user] = {round_trips_today: f(u, 'round_trips_today'),
    user_cost_today: f(u, 'user_cost_today'), points_today: f(u, 'points_today'),
    cost_per_point: f(u, 'cost_per_point')};
}
for (const s of document.querySelectorAll('.strategy[data-strategy]')) {
  strategies[s.dataset.strategy] = {total_volume: f(s, 'total_volume'),
    unconfirmed_volume: f(s, 'unconfirmed_volume'),
    target_volume: f(s, 'target_volume'), cost_today: f(s, 'cost_today')};
}
return {rows, users, strategies};
"""


def volume(value) -> str:
    """A volume as `alphavol status` prints it: to the cent, thousands separated."""
    return render.volume(None if value is None else Decimal(value))


def target(value) -> str:
    return render.target(Decimal(value))


def money(value) -> str:
    """A cost as the CLI prints it: to the hundredth of a cent; ``-`` when unknown."""
    return "-" if value is None else render.money(value)


def unconfirmed(value) -> str:
    """``+27.3 unconfirmed`` (the CLI's ``+unconf`` rule: tenths); empty when none."""
    if value is None or not Decimal(value):
        return ""
    return f"+{Decimal(value).quantize(Decimal('0.1')):,f} unconfirmed"


def expected_figures(doc: dict) -> dict:
    """What the page must show, from ``alphavol status --json``."""
    rows, users, strategies = {}, {}, {}
    for st in doc["strategies"]:
        strategies[st["strategy_id"]] = {
            "total_volume": volume(st["total_volume"]),
            "unconfirmed_volume": unconfirmed(st["unconfirmed_volume"]),
            "target_volume": target(st["target_volume"]),
            "cost_today": money(st["cost_today"]),
        }
        for u in st["users"]:
            rows[f"{u['user_id']}/{u['strategy_id']}"] = {
                "state": u["state"],
                "current_volume": volume(u.get("current_volume")),
                "unconfirmed_volume": unconfirmed(u.get("unconfirmed_volume")),
                "target_volume": target(u["target_volume"]),
                "trades": str(u.get("trades", 0)),
                "cost_today": money(u.get("cost_today", "0")),
            }
    for uid, day in user_days(doc).items():  # the user's day from the books, as `history`
        known = day.get("user_round_trips") is not None
        users[uid] = {
            "round_trips_today": str(day["user_round_trips"]) if known else "-",
            "user_cost_today": money(day.get("user_cost_today") or "0") if known else "-",
            "points_today": "?" if day.get("points_today") is None else str(day["points_today"]),
            "cost_per_point": money(day.get("cost_per_point")),
        }
    return {"rows": rows, "users": users, "strategies": strategies}


def user_days(doc: dict) -> dict[str, dict]:
    """Per user, its first row that carries the day from the books (else its first row)."""
    days: dict[str, dict] = {}
    for st in doc["strategies"]:
        for u in st["users"]:
            if u["user_id"] not in days or (
                days[u["user_id"]].get("user_round_trips") is None
                and u.get("user_round_trips") is not None
            ):
                days[u["user_id"]] = u
    return days


async def same_figures(d, browser: Browser, within: float) -> None:
    """The figures on the page are those `alphavol status --json` prints now (waiting at
    most ``within`` seconds for the page's next poll)."""
    deadline = time.monotonic() + within
    while True:
        cli = await d.acli("status", "--json")
        want, shown_now = expected_figures(json.loads(cli.stdout)), await browser.js(PAGE_FIGURES)
        if want == shown_now or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert shown_now == want


BARS = """
const bars = {};
for (const r of document.querySelectorAll('.row[data-user]'))
  bars[r.dataset.user + '/' + r.dataset.strategy] = parseFloat(r.querySelector('.bar i').style.width);
return bars;
"""


def with_unconfirmed(u: dict) -> float:
    """A row's progress in percent as `status` measures it: the exchange's figure plus
    what was traded since, against the target."""
    done = Decimal(u["current_volume"]) + Decimal(u.get("unconfirmed_volume") or 0)
    return float(min(Decimal(100), done * 100 / Decimal(u["target_volume"])))


async def same_unconfirmed(d, browser: Browser, within: float) -> dict[str, str]:
    """A moment when the ``+27.3 unconfirmed`` the page shows beside a trading user's volume
    is what `alphavol status --json` says now (every round trip moves it, so per user), and
    that user's progress bar counts it; returns those users' figures."""
    deadline = time.monotonic() + within
    seen: list = []
    while time.monotonic() < deadline:
        doc = json.loads((await d.acli("status", "--json")).stdout)
        want = expected_figures(doc)["rows"]
        page, bars = (await browser.js(PAGE_FIGURES))["rows"], await browser.js(BARS)
        same = {
            key: f["unconfirmed_volume"]
            for key, f in page.items()
            if f["unconfirmed_volume"] and f == want.get(key)
        }
        if same:
            users = {f"{u['user_id']}/{u['strategy_id']}": u for u in doc["strategies"][0]["users"]}
            for key in same:
                assert abs(bars[key] - with_unconfirmed(users[key])) < 0.01, (key, bars[key])
            return same
        seen.append((page, want))
        await asyncio.sleep(0.1)
    raise AssertionError(f"no unconfirmed volume on the page as status --json has it: {seen[-3:]}")


async def not_wider_than(browser: Browser, width: int) -> None:
    wide = await browser.js("return document.documentElement.scrollWidth")
    assert wide <= width, f"the page is {wide} px wide in a {width} px window"


async def login(browser: Browser, dash: Dash, token: str) -> None:
    from selenium.webdriver.common.by import By

    await browser.get(dash.url + "/")
    assert (await browser.js("return location.pathname")) == "/login"  # no token: log in

    def type_token() -> None:
        field = browser.driver.find_element(By.CSS_SELECTOR, "input[type=password][name=token]")
        field.send_keys(token)
        field.submit()

    await browser.call(type_token)
    await browser.until(
        "const m = document.getElementById('message');"
        "return location.pathname === '/' || (m && m.textContent)",
        10,
        "the page after login",
    )
    assert await browser.js("return location.pathname") == "/", await browser.source()


async def click(browser: Browser, selector: str) -> None:
    from selenium.webdriver.common.by import By

    await browser.call(lambda: browser.driver.find_element(By.CSS_SELECTOR, selector).click())


async def api(dash: Dash, method: str, path: str, **kw) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, dash.url + path, **kw) as resp,
    ):
        return resp.status, await resp.text()


async def test_the_page_shows_every_user_live_and_drain_and_start_do_what_the_cli_does(
    dash, sim, browser, tmp_path
):
    await sim.admin.set_config(fill_delay=0.05)
    w = dash()
    d = w.d
    creds = {uid: sim.credentials(acct) for uid, acct in ACCOUNTS.items()}
    d.store(creds)
    token = w.write_token()
    async with Receiver() as rx, PasswordProxy("http", "dash", PROXY_PASSWORD) as proxy:
        d.write_config(
            [strategy("koge", ["1", "2", "3"], target=700, amount=10)],
            user_overrides=[{"user_id": "3", "proxy": proxy.url}],  # user 3 trades through it
            sections={**w.section(), "notify": {"urls": [rx.url()]}},
        )
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST)
        await d.wait_ready()
        await w.wait_listening()
        secrets = sorted(
            {v for c in creds.values() for v in c.secret_values()}
            | {token, NOTIFY_TOKEN, PROXY_PASSWORD}
        )

        # without the token: the login page, 401 from the API, nothing else
        status, _ = await api(w, "GET", "/api/v1/status")
        assert status == 401
        status, _ = await api(w, "GET", "/api/v1/status", headers={"Authorization": "Bearer x" * 9})
        assert status == 401
        status, body = await api(
            w, "GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200 and json.loads(body)["strategies"][0]["strategy_id"] == "koge"

        await login(browser, w, token)
        listed = await browser.until(
            "const s = [...document.querySelectorAll('.row[data-user]')]"
            ".map(r => r.dataset.user + ':' + r.querySelector('[data-field=state]').textContent);"
            "return s.length === 3 && s.every(x => x.endsWith(':RUNNING')) && s",
            20,
            "three users RUNNING",
        )
        assert sorted(listed) == ["1:RUNNING", "2:RUNNING", "3:RUNNING"]

        # the volume changes without a reload (the marker set now survives)
        await browser.js("window.notReloaded = true")
        vol = "return document.querySelector('.row[data-user=\"1\"] [data-field=current_volume]').textContent"
        first = await browser.js(vol)
        await browser.until(
            f"const v = (() => {{ {vol} }})(); return window.notReloaded && v !== arguments[0] && v",
            20,
            "user 1's volume changing",
            first,
        )

        # while they trade, what was traded since the exchange's last read shows beside its
        # figure, as `status` has it ("+27.3 unconfirmed"), and the page stays within 360 px
        # (fills slowed: at full speed every user trades between two polls of the page)
        await sim.admin.set_config(fill_delay=1.0)
        await browser.size(360, 800)
        await browser.until(
            "return [...document.querySelectorAll('.row [data-field=unconfirmed_volume]')]"
            ".some(e => /^[+][0-9,.]+ unconfirmed$/.test(e.textContent))",
            20,
            "a user's unconfirmed volume",
        )
        plus = await same_unconfirmed(d, browser, 20)
        assert all(re.fullmatch(r"[+][0-9,]+[.][0-9] unconfirmed", v) for v in plus.values())
        await browser.screenshot(tmp_path / "dashboard-trading-360x800.png")
        await not_wider_than(browser, 360)
        await browser.size(1280, 800)
        await sim.admin.set_config(fill_delay=0.05)

        # drain user 1 from the page, user 2 from the CLI: the same states and events
        await click(browser, '.user[data-user="1"] button[data-action="drain"]')
        assert (await d.acli("stop", "--user", "2")).returncode == 0
        await d.wait_users(
            lambda us: us[("koge", "1")].state == us[("koge", "2")].state == "STOPPED",
            30,
            "users 1 and 2 STOPPED",
        )
        await browser.until(
            "return document.querySelector('.row[data-user=\"1\"] [data-field=state]')"
            ".textContent === 'STOPPED'",
            10,
            "user 1 STOPPED on the page",
        )

        async def same_moves(last: str) -> list[str]:
            """Users 1 and 2 went through the same states, ending in ``last`` (the log
            is written off the supervisor's loop: waited for)."""

            async def both():
                moves = [
                    [e["dst"] for e in d.events("user_state_changed") if e["user_id"] == u]
                    for u in "12"
                ]
                return moves[0] == moves[1] and moves[0][-1] == last and moves[0]

            return await d.until(both, 10, f"users 1 and 2 through the same states to {last}")

        assert (await same_moves("STOPPED"))[-2:] == ["STOPPING", "STOPPED"]
        (drain,) = [e for e in d.events("dashboard_action") if e["action"] == "drain"]
        assert drain["user_id"] == "1" and drain["ok"] and "browser session #1" in drain["who"]

        await click(browser, '.user[data-user="1"] button[data-action="start"]')
        assert (await d.acli("start", "--user", "2")).returncode == 0
        await d.wait_users(
            lambda us: all(us[("koge", u)].state == "RUNNING" for u in "12"),
            30,
            "users 1 and 2 trading again",
        )
        again = await same_moves("RUNNING")
        assert "STOPPED" in again[:-1], again  # from STOPPED back to RUNNING, as the CLI does

        # a POST of the session without its CSRF token: 403, and nothing stopped
        cookies = {c["name"]: c["value"] for c in await browser.call(browser.driver.get_cookies)}
        status, body = await api(
            w, "POST", "/api/v1/actions/drain", json={"user_id": "3"}, cookies=cookies
        )
        assert status == 403 and "X-CSRF-Token" in body
        (session,) = [
            c
            for c in await browser.call(browser.driver.get_cookies)
            if c["name"] == "alphavol_session"
        ]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        async with aiohttp.ClientSession() as http, http.get(w.url + "/", cookies=cookies) as resp:
            csp = resp.headers["Content-Security-Policy"]
            page = await resp.text()
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>']

        # when everyone is done, the figures shown are those of `status --json`
        await d.wait_users(
            lambda us: all(u.state == "DONE" for u in us.values()), 90, "every user DONE"
        )
        await browser.until(
            "return [...document.querySelectorAll('[data-field=state]')]"
            ".every(s => s.textContent === 'DONE')",
            10,
            "every user DONE on the page",
        )
        await browser.until(
            "return document.querySelectorAll('.chart svg').length === 3", 10, "the charts"
        )
        for width in (360, 1280):
            await browser.size(width, 800)
            await same_figures(d, browser, within=5)  # the page polls every 2 s
            await browser.screenshot(tmp_path / f"dashboard-{width}x800.png")
            await same_figures(d, browser, within=0)
            await not_wider_than(browser, width)

        assert proxy.connections(), "user 3 did not go through its proxy"
        # no planted secret in the page source or in any API answer
        answers = {"page": await browser.source()}
        for path in ("/api/v1/status", "/api/v1/history", "/api/v1/chart", "/api/v1/session"):
            status, answers[path] = await api(
                w, "GET", path, headers={"Authorization": f"Bearer {token}"}
            )
            assert status == 200, (path, answers[path])
        history = json.loads(answers["/api/v1/history"])
        assert {r["user_id"] for r in history} == {"1", "2", "3"}
        for where, text in answers.items():
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"{where} shows a planted secret"
        leaked = [s for s in secrets if s in d.stderr + d.stdout]
        assert not leaked, "the supervisor's log shows a planted secret"


def curl_of(account: str, cr00: str, base_url: str) -> str:
    """What a browser's "Copy as cURL (bash)" gives for a session of ``account``."""
    csrf = hashlib.md5(cr00.encode()).hexdigest()
    return (
        f"curl '{base_url}/bapi/defi/v1/private/wallet-direct/buw/wallet/today/user-volume' \\\n"
        "  -H 'accept: */*' \\\n"
        "  -H 'clienttype: web' \\\n"
        f"  -H 'csrftoken: {csrf}' \\\n"
        f"  -H 'bnc-uuid: uuid-{account}' \\\n"
        "  -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64)' \\\n"
        f"  -b 'p20t={account}; cr00={cr00}; logined=y'"
    )


async def paste(browser: Browser, uid: str, text: str) -> str:
    """Paste ``text`` into user ``uid``'s refresh form, submit; the answer shown."""
    from selenium.webdriver.common.by import By

    await browser.js("document.getElementById('notice').textContent = ''")

    def fill() -> None:
        form = browser.driver.find_element(By.CSS_SELECTOR, f'form[data-user="{uid}"]')
        area = form.find_element(By.CSS_SELECTOR, "textarea[name=curl]")
        assert area.is_displayed()  # the form of a user needing a session is open
        area.send_keys(text)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    await browser.call(fill)
    return await browser.until(
        "return document.getElementById('notice').textContent", 10, "the answer"
    )


async def test_an_expired_session_is_refreshed_by_pasting_a_curl_and_the_user_trades_again(
    dash, sim, browser, tmp_path
):
    w = dash()
    d = w.d
    creds = {uid: sim.credentials(ACCOUNTS[uid]) for uid in ("1", "2")}
    d.store(creds)
    token = w.write_token()
    await sim.admin.set_faults(session_expired=[creds["2"].cookies["cr00"]])  # that login only
    async with Receiver() as rx:
        d.write_config(
            [strategy("koge", ["1", "2"], target=150, amount=10)],
            sections={
                **w.section(session_warn_hours=0.0005),  # under 2 s: every session is "old"
                "notify": {"urls": [rx.url()]},
            },
        )
        d.start(once=False, child=None, ALPHAVOL_TUNING=FAST, ALPHAVOL_SESSION_CHECK_SECONDS="0.2")
        await d.wait_ready()
        await w.wait_listening()
        await d.wait_users(lambda us: us[("koge", "2")].state == "FATAL", 20, "user 2 FATAL")

        await login(browser, w, token)
        needs = await browser.until(
            "const li = document.querySelector('#attention li[data-user=\"2\"]');"
            "return li && li.textContent",
            10,
            "user 2 in Needs you",
        )
        assert "session expired" in needs and "Copy as cURL" in needs
        await browser.size(360, 800)
        await browser.screenshot(tmp_path / "needs-you-360x800.png")

        # a malformed cURL: a clear message, nothing stored, nothing started
        answer = await paste(browser, "2", "curl 'https://www.binance.com/' -H 'accept: */*'")
        assert "cannot be used" in answer
        assert (await d.users())[("koge", "2")].state == "FATAL"
        assert (await d.acli("users", "list")).stdout.count("last ok") == 2

        fresh_cr00 = "cr00-fresh-login-of-user-two-0001"
        answer = await paste(browser, "2", curl_of(ACCOUNTS["2"], fresh_cr00, sim.base_url))
        assert "stored a fresh session for user 2" in answer and "queued" in answer
        await d.wait_users(
            lambda us: us[("koge", "2")].trades >= 1, 30, "user 2 trading on its fresh session"
        )
        (refresh,) = [e for e in d.events("dashboard_action") if e["ok"]]
        assert refresh["action"] == "refresh_session" and refresh["user_id"] == "2"
        listed = (await d.acli("users", "list")).stdout
        assert " ago)" in listed  # users list shows each session's age

        # the session age: in status --json, and announced once it is older than the limit
        doc = json.loads((await d.acli("status", "--json")).stdout)
        ages = {u["user_id"]: u["session_age_seconds"] for u in doc["strategies"][0]["users"]}
        assert ages["2"] < ages["1"]
        (aging, *_) = await rx.wait(
            lambda r: r.messages("user 1: session getting old"), 10, "user 1's session aging"
        )
        assert "paste it in the dashboard" in aging["message"]

        # bad input through the API: a clear message, nothing stored
        bearer = {"Authorization": f"Bearer {token}"}
        status, body = await api(
            w, "POST", "/api/v1/users/99/session", json={"curl": "curl x"}, headers=bearer
        )
        assert status == 404 and "no user '99'" in body
        status, body = await api(
            w, "POST", "/api/v1/actions/drain", json={"user_id": "99"}, headers=bearer
        )
        assert status == 404 and "no user '99'" in body
        status, _ = await api(
            w, "POST", "/api/v1/users/1/session", data=b"x" * 100_000, headers=bearer
        )
        assert status == 413
        assert (await d.users())[("koge", "1")].state in ("RUNNING", "DONE")

        # the CSRF token of one session does not serve another: 403, nothing stopped
        browser_cookies = {
            c["name"]: c["value"] for c in await browser.call(browser.driver.get_cookies)
        }
        status, body = await api(w, "GET", "/api/v1/session", cookies=browser_cookies)
        csrf_of_browser = json.loads(body)["csrf"]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{w.url}/login") as resp:
                nonce = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
            async with http.post(
                f"{w.url}/login", data={"token": token, "csrf": nonce}, allow_redirects=False
            ) as resp:
                assert resp.status == 303
            async with http.post(
                f"{w.url}/api/v1/actions/drain",
                json={"user_id": "1"},
                headers={"X-CSRF-Token": csrf_of_browser},
            ) as resp:
                assert resp.status == 403
        assert (await d.users())[("koge", "1")].state in ("RUNNING", "DONE")

        # wrong tokens from one address are slowed: refused for a while, even the right one
        for _ in range(5):
            status, _ = await api(
                w, "GET", "/api/v1/status", headers={"Authorization": "Bearer nope-nope-nope-nope"}
            )
            assert status == 401
        status, _ = await api(w, "GET", "/api/v1/status", headers=bearer)
        assert status == 429

        secrets = [*creds["2"].secret_values(), fresh_cr00, token, NOTIFY_TOKEN]
        leaked = [s for s in secrets if s in d.stderr + d.stdout]
        assert not leaked, "the supervisor's log shows a secret"


async def test_a_dashboard_without_its_token_file_is_the_operators_mistake(dash, sim):
    w = dash()
    w.d.store({"1": sim.credentials(ACCOUNTS["1"])})
    w.d.write_config([strategy("koge", ["1"], target=100)], sections=w.section())
    w.d.start(child=None)
    assert await w.d.wait_exit(20) == 2
    (line,) = [x for x in w.d.stderr.splitlines() if "dashboard.token_file" in x]
    assert "cannot read" in line and "alphavol dashboard token FILE" in line
    w.write_token()
    again = await asyncio.to_thread(
        subprocess.run,
        [ALPHAVOL, "dashboard", "token", str(w.token_file)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr

    # with its token it serves; behind a TLS proxy that says so, its cookies are Secure
    w.d.start(child=None)
    await w.wait_listening()
    for headers, secure in (
        ({}, False),
        ({"X-Forwarded-Proto": "https"}, True),
        ({"Forwarded": "for=192.0.2.7;proto=https"}, True),
        ({"X-Forwarded-Proto": "http"}, False),
    ):
        async with (
            aiohttp.ClientSession() as http,
            http.get(w.url + "/login", headers=headers) as resp,
        ):
            (cookie,) = resp.headers.getall("Set-Cookie")
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict"} <= flags, cookie
        assert ("secure" in flags) is secure, (headers, cookie)
