"""The dashboard's web application: pages, the JSON API under ``/api/v1/``, and the
checks every request passes (``supervisor.dashboard.auth``).

Routes:
  GET  /login, POST /login (form: ``token``, ``csrf``), POST /logout
  GET  /                      the page (a browser session; else a redirect to /login)
  GET  /static/{name}         its script and style (package data, read once)
  GET  /api/v1/session        this browser session's CSRF token
  GET  /api/v1/status         the fields of ``alphavol status --json``, and ``attention``
  GET  /api/v1/history        the rows of ``alphavol history --json`` (?days=, ?user=)
  GET  /api/v1/chart          per user and day: points, the exchange's, cost per point
  POST /api/v1/actions/{drain|stop_now|start|reload}   JSON {user_id?, strategy_id?}
  POST /api/v1/users/{user_id}/session                 JSON {curl}

Without a valid token or session: the login page, or 401 from the API. A browser
session's POST without its CSRF token: 403. Bodies over ``MAX_BODY`` bytes: 413.
"""

from __future__ import annotations

import html
import importlib.resources
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from supervisor.dashboard import actions
from supervisor.dashboard.auth import (
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Auth,
    Session,
    same,
)
from supervisor.dashboard.views import Books, status_doc

if TYPE_CHECKING:
    from supervisor.arbiter import Arbiter

MAX_BODY = 64 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
PAGES = ("index.html", "login.html")
WHO = "alphavol_who"  # request key: who asked (for the action log)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _read_assets() -> dict[str, str]:
    root = importlib.resources.files("supervisor.dashboard") / "static"
    return {name: (root / name).read_text(encoding="utf-8") for name in (*ASSETS, *PAGES)}


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(doc), status=status, content_type="application/json", charset="utf-8"
    )


def over_tls(request: web.Request) -> bool:
    """The browser reached us over TLS: our own, or a TLS proxy in front that says so in
    ``X-Forwarded-Proto`` or ``Forwarded`` (its first hop). Trusting those headers can only
    make a cookie stricter (Secure), never looser."""
    if request.secure:
        return True
    headers = request.headers
    if headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https":
        return True
    first = headers.get("Forwarded", "").split(",")[0]
    return any(part.strip().lower() == "proto=https" for part in first.split(";"))


def _secure(headers: Any) -> None:
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers.setdefault("Cache-Control", "no-store")


def _error(status: int, message: str) -> web.Response:
    return _json({"ok": False, "error": message}, status)


class Dashboard:
    def __init__(self, arb: Arbiter, token: str) -> None:
        self.arb = arb
        self.auth = Auth(token, monotonic=arb.clock.monotonic)
        self.books = Books(arb)
        self.assets = _read_assets()

    # ------------------------------------------------------------ the checks
    @web.middleware
    async def headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            _secure(exc.headers)
            raise
        _secure(resp.headers)
        return resp

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in ("/login",) or path.startswith("/static/"):
            return await handler(request)
        address = request.remote or "?"
        bearer = request.headers.get("Authorization", "")
        if bearer:
            wait = self.auth.locked(address)
            if wait:
                return self._slow_down(wait)
            scheme, _, given = bearer.partition(" ")
            if scheme.lower() != "bearer" or not self.auth.check_token(address, given.strip()):
                return _error(401, "wrong token")
            request[WHO] = f"token from {address}"
            return await handler(request)
        session = self.auth.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if path == "/":
                raise web.HTTPSeeOther("/login")
            return _error(401, "log in first: a session cookie or Authorization: Bearer")
        if request.method not in ("GET", "HEAD") and not same(
            request.headers.get(CSRF_HEADER), session.csrf
        ):
            return _error(403, f"missing or wrong {CSRF_HEADER} (reload the page)")
        request[WHO] = f"browser session #{session.number} from {address}"
        request["session"] = session
        return await handler(request)

    @staticmethod
    def _slow_down(wait: float) -> web.Response:
        resp = _error(429, f"too many wrong tokens from this address; try again in {wait:.0f} s")
        resp.headers["Retry-After"] = str(max(1, round(wait)))
        return resp

    # ------------------------------------------------------------ login
    def _login_page(
        self, request: web.Request, message: str = "", status: int = 200
    ) -> web.Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or ""
        if len(nonce) < 32:  # a form in another tab keeps working: the nonce is reused
            nonce = self.auth.new_login_nonce()
        text = (
            self.assets["login.html"]
            .replace("{{csrf}}", html.escape(nonce, quote=True))
            .replace("{{message}}", html.escape(message))
        )
        resp = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
        self._cookie(resp, request, LOGIN_COOKIE, nonce, max_age=3600)
        return resp

    @staticmethod
    def _cookie(
        resp: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int
    ) -> None:
        resp.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=over_tls(request),
        )

    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_page(request)

    async def login(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "?"
        wait = self.auth.locked(address)
        if wait:
            return self._login_page(
                request, f"Too many wrong tokens: try again in {wait:.0f} s.", status=429
            )
        form = await request.post()
        if not same(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE)):
            return self._login_page(request, "The form expired: try again.", status=403)
        if not self.auth.check_token(address, str(form.get("token") or "").strip()):
            actions.log.warning("dashboard_login_failed", address=address)
            return self._login_page(request, "Wrong token.", status=401)
        sid, session = self.auth.open_session()
        actions.log.info("dashboard_login", session=session.number, address=address)
        resp = web.Response(status=303, headers={"Location": "/"})
        self._cookie(resp, request, SESSION_COOKIE, sid, max_age=SESSION_SECONDS)
        resp.del_cookie(LOGIN_COOKIE, path="/")
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        self.auth.close_session(request.cookies.get(SESSION_COOKIE))
        resp = _json({"ok": True})
        resp.del_cookie(SESSION_COOKIE, path="/")
        return resp

    # ------------------------------------------------------------ the page and the API
    async def page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self.assets["index.html"], content_type="text/html", charset="utf-8"
        )

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(text=self.assets[name], content_type=ASSETS[name], charset="utf-8")

    async def session(self, request: web.Request) -> web.Response:
        session: Session | None = request.get("session")
        return _json({"csrf": session.csrf if session else None})

    async def status(self, request: web.Request) -> web.Response:
        await self.arb.observer.today.current()
        return _json(status_doc(self.arb))

    async def history(self, request: web.Request) -> web.Response:
        try:
            days = int(request.query.get("days", "15"))
        except ValueError:
            return _error(400, "days: a whole number of UTC days, 1 to 366")
        if not 1 <= days <= 366:
            return _error(400, "days: a whole number of UTC days, 1 to 366")
        return _json(await self.books.history(days, request.query.get("user")))

    async def chart(self, request: web.Request) -> web.Response:
        return _json(await self.books.chart())

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            doc = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        if not isinstance(doc, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return doc

    async def action(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        target = {k: body.get(k) for k in ("strategy_id", "user_id")}
        if any(v is not None and not isinstance(v, str) for v in target.values()):
            return _error(400, "strategy_id and user_id are text")
        out = actions.control(self.arb, request[WHO], request.match_info["action"], **target)
        return _json({"ok": out.ok, "message": out.message}, out.status)

    async def refresh(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        curl = body.get("curl")
        if not isinstance(curl, str):
            return _error(400, 'curl: the text of a "Copy as cURL"')
        uid = request.match_info["user_id"]
        out = await actions.refresh_session(self.arb, request[WHO], uid, curl)
        return _json({"ok": out.ok, "message": out.message}, out.status)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.headers, self.guard], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/login", self.login_form)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_get("/", self.page)
        r.add_get("/static/{name}", self.asset)
        r.add_get("/api/v1/session", self.session)
        r.add_get("/api/v1/status", self.status)
        r.add_get("/api/v1/history", self.history)
        r.add_get("/api/v1/chart", self.chart)
        r.add_post("/api/v1/actions/{action}", self.action)
        r.add_post("/api/v1/users/{user_id}/session", self.refresh)
        return app
