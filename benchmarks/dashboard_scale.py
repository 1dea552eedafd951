"""Is the dashboard quick on a store of a schedule over weeks? 1,000,000 samples, timed.

Builds the store with ``store_scale.build`` (1,000 runs x 100 rounds x 10 samples by
default, through the real store API), starts ``fleetbench dashboard -o DIR --port 0`` as
a subprocess and times, from the process start: the first response of the page, then
the page's first paint (page, Vega bundle and the overview's data, fetched at once as a
browser does: what it needs before it draws), and each view's data endpoint, cold (first call;
the unfiltered overview, over-time and failures are prefetched at start-up) and again
(nothing changed: the answer cached for the stores' version), and the over-time view
computed afresh. The comparison is "pending" until the start-up warm-up has summarised
every run (``report.aggregate``, all samples of each run); the times until its first
rows (the runs summarised so far) and until it is complete are printed.
Also printed: the dashboard's CPU seconds at first paint (wall time on a shared machine
mostly measures the other jobs) and its peak RSS at the end.
Targets (issue 13): first paint < 2 s, each view's data < 1 s.

Usage: python benchmarks/dashboard_scale.py [--runs 1000] [--rounds 100] [--samples 10]
       [--keep DIR]
Exits 0 when every request succeeded: the figures are a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from store_scale import add_size_args, ensure_store  # benchmarks/ on sys.path: not a copy

VIEWS = ("overview", "comparison", "over-time", "failures", "rag", "samples")


def get(base: str, path: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=600) as reply:
        body = reply.read()
    if b'"pending": "' in body[:300]:
        return float("nan"), 0
    return time.perf_counter() - start, len(body)


def ready(base: str, view: str, started: float) -> float:
    """Seconds from the process start until the view is no longer pending (the
    comparison waits for the start-up warm-up to summarise every run)."""
    while True:
        took, _ = get(base, f"/api/view/{view}")
        if took == took:  # not NaN: answered with data
            return time.perf_counter() - started
        time.sleep(1.0)


def first_rows(base: str, started: float) -> float:
    """Seconds from the process start until the comparison shows rows (those of the
    runs summarised so far, while it is still pending)."""
    while True:
        with urllib.request.urlopen(base + "/api/view/comparison", timeout=600) as reply:
            if b'"rows": [{' in reply.read():
                return time.perf_counter() - started
        time.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_args(parser)
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="dashboard-scale-"))
    try:
        ensure_store(out, args)
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (the child's stderr, read on failure)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench", "dashboard", "-o", str(out), "--port", "0"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            found = re.search(r"http://\S+?/", line)
            if not found:
                log.seek(0)
                sys.exit(f"dashboard did not start: {line!r} {log.read()[-2000:]}")
            base = found.group(0).rstrip("/")
            get(base, "/")
            first = time.perf_counter() - started

            def done(path: str) -> float:
                get(base, path)
                return time.perf_counter() - started

            # What the page asks for next, at once, as a browser does.
            paths = ("/vendor/vega.js", "/static/app.js", "/api/view/overview", "/api/meta")
            with ThreadPoolExecutor(len(paths)) as pool:
                finished = dict(zip(paths, pool.map(done, paths), strict=True))
            paint = max(finished[p] for p in paths[:3])
            print(f"start-up to first response: {first:.2f} s; first paint (page, Vega "
                  f"bundle, overview data): {paint:.2f} s (target < 2 s), "
                  f"{cpu_seconds(proc.pid):.2f} CPU s by then; filter menus (a scan of every "
                  f"sample's category) {finished['/api/meta']:.2f} s; load average "
                  f"{os.getloadavg()[0]:.1f}")  # fmt: skip
            for view in VIEWS:
                if view == "comparison":
                    rows = first_rows(base, started)
                    whole = ready(base, view, started)
                    print(f"  comparison: first rows {rows:.1f} s, ready (every run "
                          f"summarised) {whole:.1f} s after start")  # fmt: skip
                cold, size = get(base, f"/api/view/{view}")
                warm, _ = get(base, f"/api/view/{view}")
                print(f"  {view:<11} data: cold {cold:.2f} s, again {warm:.3f} s, "
                      f"{size / 1e3:.0f} kB (target < 1 s)")  # fmt: skip
            uncached, _ = get(base, "/api/view/over-time?round_from=1")  # all rows, not prefetched
            print(f"  over-time computed afresh (round_from=1, every row): {uncached:.2f} s")
            filtered, _ = get(base, "/api/view/over-time?model=model0001")
            search, _ = get(base, "/api/view/samples?q=answer%205")
            changes, _ = get(base, "/api/changes")
            print(f"  over-time, one model: {filtered:.2f} s; sample search: {search:.2f} s; "
                  f"changes poll: {changes * 1000:.0f} ms")  # fmt: skip
            print(f"dashboard peak RSS: {peak_rss_mb(proc.pid):.0f} MB")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
