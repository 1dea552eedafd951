"""The dashboard's ASGI app (Starlette): the page, its static files, the JSON views,
their CSV exports, and the access checks in front of all of them.

Access: with a token set, every request (the page, static files, JSON, CSV) must carry
it: ``Authorization: Bearer TOKEN``, an ``X-Fleetbench-Token`` header, or the cookie
that ``?token=TOKEN`` sets once (the browser is then redirected to the same URL without
it, so the token does not stay in the address bar or the history). Without the token a
request gets 401. Independently of the token, the ``Host`` header must name the address
the dashboard listens on (or localhost): a web page elsewhere cannot reach a loopback
dashboard through DNS rebinding.

Nothing served comes from outside the package or the stores: static files are the
package's own, the views read only the stores' tables, and no view includes environment
variables or secrets (a run's stored config names the variable of its API key, never
the key: ``backends.apikeys``).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from fleetbench.dashboard import filters, views
from fleetbench.dashboard.sources import Sources

COOKIE = "fleetbench_token"
PARTIAL_S = 5.0  # a partial document (still pending) is reused at most this long
# Views computed at start-up, unfiltered: those that aggregate every sample.
PREFETCH = ("overview", "over-time", "failures")
HEADER = "x-fleetbench-token"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
SECURITY_HEADERS = {
    # Vega compiles its expressions with Function(): 'unsafe-eval'; nothing else runs.
    "content-security-policy": "default-src 'self'; script-src 'self' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class TokenGate:
    """Refuse every request without the token (401); ``?token=`` sets the cookie."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token
        self.prefetch: Callable[[], None] = lambda: None  # set by ``create_app``

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            given = dict(query).get("token")
            if given is not None and self._ok(given):
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                target = scope["path"] + (f"?{rest}" if rest else "")
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                await Response(status_code=303, headers={"location": target, "set-cookie": cookie})(
                    scope, receive, send
                )
                return
            if not self._presented(scope):
                await PlainTextResponse(
                    "401: this dashboard needs its access token", 401, SECURITY_HEADERS
                )(scope, receive, send)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", [])] + [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in names
                ]  # fmt: skip
            await send(message)

        await self.app(scope, receive, with_headers)

    def _ok(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _presented(self, scope: Scope) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        candidates = [headers.get(HEADER, "")]
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        if "cookie" in headers:
            morsel = SimpleCookie(headers["cookie"]).get(COOKIE)
            if morsel is not None:
                candidates.append(morsel.value)
        return any(c and self._ok(c) for c in candidates)


def _static(name: str) -> bytes:
    return resources.files("fleetbench.dashboard").joinpath("static", name).read_bytes()


def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed for the Vega-Lite version altair writes: the
    report's offline bundle (``report.render``), built once and cached on disk."""
    from fleetbench.dashboard.charts import schema_url
    from fleetbench.report import render

    render.require()
    return render.javascript_bundle(render.vl_version({"$schema": schema_url()}))


def create_app(
    sources: Sources, token: str | None, hosts: list[str], served: threading.Event | None = None
) -> Any:
    """The dashboard over ``sources``; ``hosts``: the Host names it answers to;
    ``served`` is set once a view was served (the start-up warm-up waits for it)."""
    cache, partial = _Cache(), _Cache()

    def index(request: Request) -> Response:
        return Response(_static("index.html"), media_type="text/html")

    def vega(request: Request) -> Response:
        return Response(vega_bundle(), media_type="text/javascript")

    def meta(request: Request) -> Response:
        known = sources.known()
        return JSONResponse(
            {
                "folders": [s.name for s in sources.items],
                "models": sorted(known.models),
                "tasks": sorted(known.tasks),
                "backends": sorted(known.backends),
                "categories": sorted(known.categories),
                "views": list(views.VIEWS),
                "version": sources.version(),
            }
        )

    def changes(request: Request) -> Response:
        return JSONResponse({"version": sources.version()})

    def parsed(request: Request) -> filters.Filters:
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        return filters.parse(query, sources.known())

    def document(name: str, f: filters.Filters, version: str) -> str:
        """The view's JSON: cached for the stores' version; one still being computed
        (the comparison's partial summaries) for three times as long as it took to
        build, ``PARTIAL_S`` at most, so that polling pages do not rebuild it again and
        again while the workers summarise."""
        key = (name, f, version)
        body = cache.get(key) or partial.get(key)
        if body is None:
            start = time.monotonic()
            doc = views.VIEWS[name](sources, f) | {"view": name, "version": version}
            rows = doc["rows"]
            if len(rows) > views.TABLE_MAX:  # the page's table; the CSV holds every row
                doc |= {"rows": rows[: views.TABLE_MAX], "rows_total": len(rows)}
            body = json.dumps(_finite(doc), default=str, allow_nan=False)
            if "pending" not in doc:
                cache.put(key, body)
            else:  # a cheap one (nothing ready yet) is rebuilt at once, a costly one not
                partial.put(key, body, min(PARTIAL_S, 3 * (time.monotonic() - start)))
        return body

    def prefetch() -> None:
        """The unfiltered views' documents, ahead of their first request (start-up)."""
        for name in PREFETCH:
            with contextlib.suppress(Exception):  # a failure is the request's to report
                document(name, filters.Filters(), sources.version())

    def view(request: Request) -> Response:
        name = request.path_params["name"]
        as_csv = name.endswith(".csv")
        name = name.removesuffix(".csv")
        if name not in views.VIEWS:
            return _error(404, f"unknown view {name[:40]!r}; valid: {', '.join(views.VIEWS)}")
        try:
            version = sources.version()
            f = parsed(request)
            if as_csv:
                lines = list(views.csv_lines(name, sources, f))
                disposition = f'attachment; filename="fleetbench-{name}.csv"'
                return StreamingResponse(
                    iter(lines),
                    media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": disposition},
                )
            body = document(name, f, version)
        except filters.FilterError as exc:
            return _error(400, str(exc))
        except sqlite3.OperationalError as exc:  # busy past the timeout, a damaged file
            return _error(503, f"store not readable right now: {exc}")
        if served is not None:
            served.set()
        return Response(body, media_type="application/json")

    routes = [
        Route("/", index),
        Route("/vendor/vega.js", vega),
        Route("/api/meta", meta),
        Route("/api/changes", changes),
        Route("/api/view/{name}", view),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
    )
    app.mount("/static", StaticFiles(packages=[("fleetbench.dashboard", "static")]))
    gate = TokenGate(app, token)
    gate.prefetch = prefetch
    return gate


class _Cache:
    """The latest view documents by (view, filters, stores' version): a view is computed
    once per change of the stores, however many pages poll it."""

    SIZE = 48

    def __init__(self) -> None:
        self._items: OrderedDict[Any, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> str | None:
        """The document, unless it expired."""
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() > found[0]:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: Any, value: str, ttl: float = float("inf")) -> None:
        """Keep ``value`` for ``ttl`` seconds (default: until evicted)."""
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.SIZE:
                self._items.popitem(last=False)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: the browser's JSON.parse rejects them."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
