"""``fleetbench dashboard``: serve the live dashboard over results folders until Ctrl-C."""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fleetbench.errors import ConfigError, UserError

if TYPE_CHECKING:
    from fleetbench.dashboard.sources import Sources

TOKEN_ENV = "FLEETBENCH_DASHBOARD_TOKEN"
INSTALL_HINT = "pip install 'fleetbench[dashboard]'"
DASHBOARD_HELP = "\n\n".join(
    [
        "Serve a live web dashboard over one or more results folders: runs by status and "
        "live progress, the report's comparison (table, rankings, Pareto plots), latency, "
        "TTFT, throughput, success and energy per model and round, failures by reason and "
        "provider, RAG coverage and recall, and a sample browser with search. Filters for "
        "model, task, category, rounds, time and backend; every view exports CSV.",
        "The stores are opened read-only: the dashboard never writes to a results folder "
        "and never holds up a batch writing to it. Views refresh by themselves while a "
        "batch or schedule runs.",
        "It listens on 127.0.0.1 unless --host says otherwise; another address needs "
        f"--token (or {TOKEN_ENV}), and then every request must carry it (open the page "
        "once as URL?token=TOKEN). Needs the dashboard extra: " + INSTALL_HINT + ".",
    ]
)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warm(sources: Sources, served: threading.Event, prefetch: Callable[[], None]) -> None:
    """The Vega bundle, the run summaries and the views over every sample ahead of the
    first requests; a failure here is the first request's to report, not the thread's."""
    with contextlib.suppress(Exception):
        from fleetbench.dashboard.app import vega_bundle

        vega_bundle()
        sources.warm(served, prefetch)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is one clear line and
    ``--port 0`` (any free port) can print the port it got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--host/--port: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def dashboard(
    output: Annotated[
        list[Path],
        typer.Option(
            "--output", "-o", help="Results folder holding fleetbench.db; repeat for several."
        ),
    ],
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on (another than loopback needs --token)."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8050,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            show_envvar=True,
            help="Access token every request must carry (header, bearer or ?token= once).",
            show_default=False,
        ),
    ] = None,
) -> None:
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"the dashboard needs {' and '.join(missing)}; run: {INSTALL_HINT}")
    token = token or None
    if not _loopback(host) and token is None:
        raise ConfigError(
            f"--host {host}: listening beyond this machine needs an access token; "
            f"give --token or set {TOKEN_ENV}"
        )
    if token is not None and len(token) < 8:
        raise ConfigError("--token: shorter than 8 characters; choose a longer one")
    from fleetbench.dashboard.app import create_app
    from fleetbench.dashboard.sources import Sources

    sources = Sources([p.resolve() for p in output])
    sources.check()
    wildcard = host in ("0.0.0.0", "::", "")
    hosts = ["*"] if wildcard else sorted({host, "127.0.0.1", "localhost", "::1"})
    served = threading.Event()
    app = create_app(sources, token, hosts, served)
    threading.Thread(target=_warm, args=(sources, served, app.prefetch), daemon=True).start()
    sock = _bind(host, port)
    import uvicorn

    shown = f"[{host}]" if ":" in host else host
    where = f"http://{shown}:{sock.getsockname()[1]}/"
    note = " (open it once as URL?token=TOKEN)" if token else ""
    typer.echo(f"dashboard: {where}{note} over {', '.join(str(p) for p in output)}; Ctrl-C to stop")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        sources.close()
    typer.echo("dashboard: stopped")
