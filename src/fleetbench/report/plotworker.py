"""A vl-convert in a process of its own, for the report after a parallel batch and
for ``fleetbench report`` (``render.PLOT_WORKERS`` of them).

Why: vl-convert evaluates one spec at a time per process (one JavaScript worker), so
the plots of a report render one after another whatever the threads: the report after
a batch re-renders every plot the batch's runs changed (its last run changes them
all), ~0.1 s a plot on the batch's critical path (benchmarks/makespan.py). Started and
warmed up while the runs execute or are summarised (``render.warm_up``), two of them
render two plots at once: ~0.11 s, not ~0.2 s.

``python -m fleetbench.report.plotworker VL_VERSION`` warms vl-convert up on that
Vega-Lite version, writes ``ready``, then serves requests on stdin/stdout: a request
is a line of JSON (a Vega-Lite spec), the reply a JSON line ``{"svg": N, "png": M}``
followed by the SVG's N bytes (UTF-8) and the PNG's M bytes, or ``{"error": TEXT}``.
It exits when its stdin closes. Both files come from ``render.convert_here``, the
function the batch's process uses: the same files either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
from typing import IO, Any

READY = b"ready\n"


class PlotWorker:
    """The batch's end of a plot worker; ``convert`` is safe from several threads and
    never waits for the worker: busy, still warming up or gone, it says None."""

    def __init__(self, vl_version: str) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench.report.plotworker", vl_version],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Not the batch's stderr: a command whose output is read to its end (a CI
            # log, benchmarks/makespan.py) must not wait for this process too.
            stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Lock()
        self._ready = False
        self._gone = False

    def convert(self, spec: dict[str, Any]) -> tuple[str, bytes] | None:
        """The spec's SVG and PNG, or None when the worker cannot take it now."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            try:
                line = json.dumps(spec).encode() + b"\n"
            except (TypeError, ValueError):
                return None  # not plain JSON: rendered here
            if self._gone or not self._is_ready():
                return None
            try:
                return self._request(line)
            except (OSError, ValueError, KeyError):
                self._gone = True
                return None
        finally:
            self._lock.release()

    def close(self) -> None:
        """End the worker: it holds nothing to save, and one still warming up would
        only read its closed stdin after that. It is reaped on a thread of its own:
        the end of a ~100 MB process takes the kernel ~10 ms, which the batch's end
        (benchmarks/makespan.py) need not wait for."""
        with self._lock:
            self._gone = True
            for stream in (self._proc.stdin, self._proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        with contextlib.suppress(OSError):
            self._proc.kill()
        threading.Thread(target=self._proc.wait, name="plot-worker-reaper", daemon=True).start()

    def _is_ready(self) -> bool:
        if not self._ready:
            out = self._stdout()
            if not select.select([out], [], [], 0)[0]:
                return False  # still warming up: the caller renders it itself
            if out.readline() != READY:
                self._gone = True
                return False
            self._ready = True
        return True

    def _request(self, line: bytes) -> tuple[str, bytes] | None:
        stdin, out = self._proc.stdin, self._stdout()
        assert stdin is not None
        stdin.write(line)
        stdin.flush()
        header = json.loads(out.readline())
        if "error" in header:
            return None  # rendered again here, where the error is raised as it would be
        svg, png = _read(out, int(header["svg"])), _read(out, int(header["png"]))
        return svg.decode("utf-8"), png

    def _stdout(self) -> IO[bytes]:
        assert self._proc.stdout is not None
        return self._proc.stdout


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise OSError("the plot worker exited mid-reply")
    return data


def main(argv: list[str]) -> int:
    from fleetbench.report import render

    out = sys.stdout.buffer
    schema = f"https://vega.github.io/schema/vega-lite/v{argv[1]}.json"
    render.convert_here(render.WARM_SPEC | {"$schema": schema})  # as render.warm_up
    out.write(READY)
    out.flush()
    for line in sys.stdin.buffer:
        try:
            svg, png = render.convert_here(json.loads(line))
        except Exception as exc:  # the batch renders it itself and raises it there
            out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        else:
            data = svg.encode("utf-8")
            out.write(json.dumps({"svg": len(data), "png": len(png)}).encode() + b"\n")
            out.write(data)
            out.write(png)
        out.flush()
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)  # skip tearing down vl-convert's JavaScript engine
