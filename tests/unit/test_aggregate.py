"""Per-run aggregates and the master CSV's formatting rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_store import RUN, sample

from fleetbench.meters import CpuTimeEstimate, co2_grams
from fleetbench.report import MASTER_COLUMNS, summarize_run, write_master_csv
from fleetbench.store import COMPLETED, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    config = {"energy": {"carbon_intensity_g_per_kwh": 400.0, "watts_per_core": 10.0}}
    s.upsert_run(RUN | {"config": config}, "b1", planned_samples=4)
    return s


def test_summary_arithmetic(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, completion_tokens=10, latency_s=0.5, energy_wh=0.001))
    store.add_sample(sample(1, a, completion_tokens=30, latency_s=1.5, energy_wh=0.003))
    store.add_sample(
        sample(
            2,
            a,
            error="boom",
            completion_tokens=None,
            prompt_tokens=None,
            latency_s=None,
            ttft_s=None,
            energy_wh=0.0005,
        )
    )
    store.finish_attempt("r1", a, COMPLETED, None)
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert (s["total_prompts"], s["successful_prompts"], s["failed_prompts"]) == (4, 2, 2)
    assert (s["samples_stored"], s["samples_with_error"]) == (3, 1)
    assert (s["total_prompt_tokens"], s["total_completion_tokens"], s["total_tokens"]) == (
        6,
        40,
        46,
    )
    assert s["avg_latency_seconds"] == pytest.approx(1.0)
    assert s["throughput_tokens_per_second"] == pytest.approx(40 / 2.0)
    assert s["energy_wh"] == pytest.approx(0.0045)
    assert s["gpu_energy_wh"] is None and s["cpu_energy_wh"] == pytest.approx(0.0045)
    assert s["co2_emissions_g"] == pytest.approx(0.0045 / 1000 * 400)
    # tokens per joule x joules = tokens
    assert s["tokens_per_joule"] * s["energy_wh"] * 3600 == pytest.approx(40)
    assert s["avg_energy_per_prompt_wh"] == pytest.approx(0.0045 / 3)
    assert s["energy_method"] == "estimate" and s["attempts"] == 1


def test_unmeasured_is_empty_never_zero(store: Store, tmp_path: Path) -> None:
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["energy_wh"] is None and s["tokens_per_joule"] is None
    assert s["energy_method"] == "none" and s["avg_latency_seconds"] is None
    path = write_master_csv(tmp_path, [s])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == MASTER_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["gpu_energy_wh"] == "" and row["co2_emissions_g"] == ""
    assert row["failed_prompts"] == "4"


def test_cpu_time_estimate_is_labelled_and_proportional() -> None:
    meter = CpuTimeEstimate(watts_per_core=36.0)
    meter.begin()
    total = 0
    for i in range(300_000):
        total += i * i
    reading = meter.end()
    assert reading.method == "estimate"
    assert reading.cpu_seconds > 0
    assert reading.energy_wh == pytest.approx(reading.cpu_seconds * 36.0 / 3600)
    assert co2_grams(2.0, 500.0) == pytest.approx(1.0)
    assert co2_grams(None, 500.0) is None
    json.dumps(reading.__dict__)


def test_reasoning_and_answer_tokens(store: Store) -> None:
    run = store.get_run("r1")
    assert run is not None
    empty = summarize_run(store, run)
    assert (empty["reasoning_tokens"], empty["answer_tokens"]) == (None, None)
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, completion_tokens=50, reasoning_tokens=40))
    store.add_sample(sample(1, a, completion_tokens=10, reasoning_tokens=0))
    store.add_sample(sample(2, a, completion_tokens=30))  # count unknown: left out
    s = summarize_run(store, run)
    assert (s["reasoning_tokens"], s["answer_tokens"]) == (40, 20)
    assert s["total_completion_tokens"] == 90
    assert MASTER_COLUMNS[-2:] == ["reasoning_tokens", "answer_tokens"]
