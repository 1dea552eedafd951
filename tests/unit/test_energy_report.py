"""A run's energy columns: net and gross per device class, idle watts, honesty rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_store import RUN, sample

from fleetbench.report import MASTER_COLUMNS, summarize_run
from fleetbench.store import COMPLETED, SampleRow, Store

RECORD = {
    "devices": [
        {"id": "gpu0", "kind": "gpu", "method": "nvml-counter", "name": "NVIDIA H100"},
        {"id": "gpu1", "kind": "gpu", "method": "nvml-polling", "name": "Tesla T4"},
        {"id": "cpu", "kind": "cpu", "method": "estimate"},
    ],
    "unmeasured": {"rapl": "/sys/class/powercap not present"},
    "idle_baseline_s": 2.0,
    "idle_w": {"gpu0": 60.0, "gpu1": 20.0},
    "peak_gpu_memory_mb": {"nvml": 1500.0, "torch": 1200.0},
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    s.upsert_run(RUN | {"config": {"energy": {}}}, "b1", planned_samples=2)
    return s


def _gpu_sample(i: int, attempt: int, gpu: float | None) -> SampleRow:
    return sample(
        i,
        attempt,
        energy_wh=None if gpu is None else gpu + 0.001,
        energy_method="estimate+nvml-counter+nvml-polling",
        gpu_energy_wh=gpu,
        gpu_energy_gross_wh=None if gpu is None else gpu * 2,
        cpu_energy_wh=0.001,
        cpu_energy_gross_wh=0.001,
    )


def test_gpu_run_reports_net_gross_idle_and_hardware(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.update_attempt("r1", a, energy_json=json.dumps(RECORD))
    store.add_sample(_gpu_sample(0, a, 0.010))
    store.add_sample(_gpu_sample(1, a, 0.030))
    store.finish_attempt("r1", a, COMPLETED, None)
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["gpu_energy_wh"] == pytest.approx(0.040)  # net
    assert s["gpu_energy_gross_wh"] == pytest.approx(0.080)
    assert s["cpu_energy_wh"] == pytest.approx(0.002)
    assert s["energy_wh"] == pytest.approx(0.042)
    assert s["energy_method"] == "estimate+nvml-counter+nvml-polling"
    assert (s["gpu_idle_w"], s["cpu_idle_w"], s["idle_baseline_s"]) == (80.0, None, 2.0)
    assert s["gpu_names"] == "NVIDIA H100, Tesla T4"
    assert s["peak_gpu_memory_mb"] == 1500.0
    assert s["energy_unmeasured_reason"] == "rapl: /sys/class/powercap not present"
    for col in ("gpu_energy_gross_wh", "gpu_idle_w", "energy_unmeasured_reason"):
        assert col in MASTER_COLUMNS
    assert MASTER_COLUMNS.index("gpu_energy_wh") == 13  # AI Energy Score's position


def test_a_partly_unmeasured_gpu_total_is_empty_with_a_reason(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.update_attempt("r1", a, energy_json=json.dumps(RECORD))
    store.add_sample(_gpu_sample(0, a, 0.010))
    store.add_sample(_gpu_sample(1, a, None))  # the NVML read failed for this one
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["gpu_energy_wh"] is None and s["energy_wh"] is None
    assert "gpu: 1/2 samples unmeasured" in s["energy_unmeasured_reason"]
    assert s["cpu_energy_wh"] == pytest.approx(0.002)
