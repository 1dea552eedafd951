"""The plot worker (report/plotworker.py): a second vl-convert in a process of its own
renders the same files as this process's, never makes a caller wait, and ends with
the batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("altair")
pytest.importorskip("vl_convert")

import altair

from fleetbench.report import render
from fleetbench.report.plotworker import PlotWorker

SPEC: dict[str, Any] = {
    "$schema": altair.SCHEMA_URL,
    "data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]},
    "mark": "bar",
    "encoding": {
        "x": {"field": "x", "type": "ordinal"},
        "y": {"field": "y", "type": "quantitative"},
    },
}


def ready(worker: PlotWorker) -> tuple[str, bytes]:
    """The first conversion once the worker has warmed up."""
    deadline = time.monotonic() + 60
    while (converted := worker.convert(SPEC)) is None:
        assert time.monotonic() < deadline, "the plot worker never became ready"
        time.sleep(0.05)
    return converted


@pytest.fixture(scope="module")
def worker() -> Iterator[PlotWorker]:
    started = PlotWorker(render.vl_version(SPEC))
    ready(started)
    yield started
    started.close()


def test_worker_renders_what_this_process_renders(worker: PlotWorker) -> None:
    assert worker.convert(SPEC) == render.convert_here(SPEC)


def test_a_spec_it_cannot_take_is_rendered_by_the_caller(worker: PlotWorker) -> None:
    assert worker.convert({"$schema": altair.SCHEMA_URL, "mark": {"type": "no-such-mark"}}) is None
    assert worker.convert({"data": {"values": [{"x": object()}]}}) is None  # not JSON
    assert worker.convert(SPEC) is not None  # and it serves the next one


def test_a_worker_warming_up_or_closed_takes_nothing() -> None:
    fresh = PlotWorker(render.vl_version(SPEC))
    try:
        assert fresh.convert(SPEC) is None  # still importing vl-convert: no wait
    finally:
        fresh.close()
    assert fresh.convert(SPEC) is None
    fresh._proc.wait(timeout=10)  # killed, and reaped


def test_save_renders_through_a_ready_worker(
    tmp_path: Path, worker: PlotWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def here(spec: dict[str, Any]) -> tuple[str, bytes]:
        raise AssertionError("rendered in this process")

    monkeypatch.setattr(render, "_workers", [worker])
    monkeypatch.setattr(render, "convert_here", here)
    png, svg = render.save(SPEC, tmp_path, "bars")
    assert png.read_bytes().startswith(b"\x89PNG") and "<svg" in svg.read_text()


def test_no_worker_starts_after_the_batch_stopped_them() -> None:
    render.stop_plot_worker()  # the batch ended before its warm-up got this far
    render._start_workers(render.vl_version(SPEC))
    assert render._workers == []
