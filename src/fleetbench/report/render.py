"""Turning chart definitions into files and page specs, offline.

vl-convert (a Rust build of Vega with its own fonts) renders a Vega-Lite spec to SVG and
PNG without a browser, and ships the Vega, Vega-Lite and vega-embed JavaScript as one
bundle, which the page inlines: the page therefore makes no request to any host.
Both come with the ``fleetbench[report]`` extra; ``require`` says how to install it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetbench.errors import UserError
from fleetbench.fsutil import atomic_write_text, read_json_object

if TYPE_CHECKING:
    from fleetbench.report.plotworker import PlotWorker

INSTALL_HINT = "pip install 'fleetbench[report]'"
PNG_SCALE = 2  # 2x: sharp in papers and slides


def report_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("altair", "vl_convert"))


def warm_up(plot_worker: bool = False) -> None:
    """Start, on a background thread, what every report pays before its first chart
    whatever it shows: importing the chart module (altair, ~0.5 s) and building a first
    chart's spec (``charts.warm``), vl-convert's
    JavaScript engine (~1.4 s on its first conversion, 0.1 s after) and compiling the
    page's template (~0.09 s). A parallel batch starts it while its runs execute, so the
    report after the last run is not on the batch's critical path twice
    (benchmarks/makespan.py); a failure here only means the report pays it later.

    ``plot_worker`` (a parallel batch, ``fleetbench report``): the JavaScript engines are instead
    ``PLOT_WORKERS`` processes of their own (report/plotworker.py), which ``save`` uses
    once they are ready, until ``stop_plot_worker``: vl-convert holds the GIL while it
    converts, so plots on threads of this process render one at a time, and stall the
    thread that builds the page (and, while it warms up, the batch's own threads)."""
    global _worker_wanted
    if plot_worker:
        with _WORKER_LOCK:
            _worker_wanted = True
    threading.Thread(target=_warm, args=(plot_worker,), name="report-warm-up", daemon=True).start()


# A Vega-Lite spec (less its "$schema") that warms vl-convert up.
WARM_SPEC: dict[str, Any] = {
    "data": {"values": [{"x": 1}]},
    "mark": "point",
    "encoding": {"x": {"field": "x", "type": "quantitative"}},
}


def _warm(plot_worker: bool = False) -> None:
    with contextlib.suppress(Exception):
        import altair

        spec = WARM_SPEC | {"$schema": altair.SCHEMA_URL}
        if plot_worker:
            _start_workers(vl_version(spec))
        from fleetbench.report import charts
        from fleetbench.report.page import template

        charts.warm()
        template()  # compiled once, kept for the report
        if not _workers:  # else they convert: this process's GIL stays the runs'
            convert_here(spec)


def _start_workers(version: str) -> None:
    global _workers
    from fleetbench.report.plotworker import PlotWorker

    with _WORKER_LOCK:  # not after stop_plot_worker (a batch that ended first)
        if _workers or not _worker_wanted:
            return
        try:
            for _ in range(PLOT_WORKERS):
                _workers.append(PlotWorker(version))
        except OSError:  # plots render in this process
            for worker in _workers:
                worker.close()
            _workers = []


def stop_plot_worker() -> None:
    """End the plot workers ``warm_up`` started, if any: plots render in this process."""
    global _workers, _worker_wanted
    with _WORKER_LOCK:
        workers, _workers, _worker_wanted = _workers, [], False
    for worker in workers:
        worker.close()


def require() -> None:
    """Raise one clear line when the report extra is not installed."""
    missing = [m for m in ("altair", "vl_convert") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"the HTML report needs {' and '.join(missing)}, which are not installed; "
            f"run: {INSTALL_HINT}"
        )


def vl_version(spec: dict[str, Any]) -> str:
    """The Vega-Lite version (``6.4``) of altair's schema URL, for vl-convert."""
    version = str(spec.get("$schema", "")).rsplit("/v", 1)[-1].removesuffix(".json")
    return ".".join(version.split(".")[:2])


@functools.cache
def javascript_bundle(version: str) -> str:
    """Vega + Vega-Lite + vega-embed as one script, safe to inline in HTML.

    vl-convert bundles it on each call (about 4 s), so the bundle is kept in the user's
    cache folder, keyed by the vl-convert and Vega-Lite versions; a cache that cannot be
    written only costs the time."""
    import vl_convert

    cache = _cache_dir() / f"vega-bundle-{metadata.version('vl-convert-python')}-{version}.js"
    try:
        return cache.read_text(encoding="utf-8")
    except OSError:
        pass
    # None: vl-convert's default snippet, which sets window.vegaEmbed (stub says str).
    bundle = vl_convert.javascript_bundle(None, vl_version=version)  # type: ignore[arg-type]
    text = str(bundle).replace("</script", "<\\/script")
    with contextlib.suppress(OSError):
        atomic_write_text(cache, text)
    return text


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetbench"


# Which spec each plot file was rendered from: a report whose data did not change
# re-renders nothing (10 plots of a 1,000-run fleet cost ~4 s in vl-convert).
PLOTS_STAMP = ".plots-stamp.json"
_STAMPS_LOCK = threading.Lock()
# As many as the report's threads (page._Plots): a plot never waits for a worker.
PLOT_WORKERS = 2
_workers: list[PlotWorker] = []  # see warm_up
_worker_wanted = False
_WORKER_LOCK = threading.Lock()


def save(spec: dict[str, Any], folder: Path, name: str) -> list[Path]:
    """``name.svg`` and ``name.png`` of the spec, atomically; kept as they are when
    they were rendered from the same spec by the same vl-convert."""
    svg_path, png_path = folder / f"{name}.svg", folder / f"{name}.png"
    key = hashlib.sha256(
        json.dumps(
            [spec, metadata.version("vl-convert-python"), PNG_SCALE], sort_keys=True, default=str
        ).encode()
    ).hexdigest()
    stamps = _plot_stamps(folder)
    if stamps.get(name) == key and svg_path.is_file() and png_path.is_file():
        return [png_path, svg_path]
    svg, png = _convert(spec)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(svg_path, svg)
    tmp = png_path.with_suffix(".png.tmp")
    tmp.write_bytes(png)
    tmp.replace(png_path)
    with _STAMPS_LOCK:  # plots render on threads (page._Plots): read, add, write at once
        stamps = _plot_stamps(folder) | {name: key}
        atomic_write_text(folder / PLOTS_STAMP, json.dumps(stamps, sort_keys=True) + "\n")
    return [png_path, svg_path]


def _convert(spec: dict[str, Any]) -> tuple[str, bytes]:
    """The spec's SVG and PNG: from a plot worker that is ready and idle (plots on two
    threads then render at once, while this process builds the page), else here."""
    for worker in _workers:
        if (converted := worker.convert(spec)) is not None:
            return converted
    return convert_here(spec)


def convert_here(spec: dict[str, Any]) -> tuple[str, bytes]:
    """The spec's SVG and PNG, from this process's vl-convert."""
    import vl_convert

    svg = str(vl_convert.vegalite_to_svg(spec, vl_version=vl_version(spec)))
    return svg, bytes(vl_convert.svg_to_png(svg, scale=PNG_SCALE))  # one Vega evaluation


def _plot_stamps(folder: Path) -> dict[str, str]:
    return read_json_object(folder / PLOTS_STAMP)


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` element: ``</`` cannot close it."""
    return json.dumps(value, default=str).replace("</", "<\\/")
