"""Energy meters through their reading functions: synthetic power traces with known
integrals, wrapping counters, a fake powercap tree, a stand-in NVML module, idle
subtraction and nested windows."""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from procs import burn_cpu

from fleetbench.meters.devices import GPU, NVML_COUNTER, NVML_POLLING, RAPL
from fleetbench.meters.estimate import CpuTime, EstimateMeter, watts_per_core
from fleetbench.meters.integrate import (
    PowerIntegrator,
    WrappingCounter,
    counter_delta,
    trapezoid,
)
from fleetbench.meters.monitor import EnergyMonitor, MeterSettings
from fleetbench.meters.nvml import NvmlMeter, visible_gpus
from fleetbench.meters.poller import Poller
from fleetbench.meters.rapl import RaplMeter, find_zones

# -- integration ------------------------------------------------------------------------


def test_trapezoid_is_exact_for_piecewise_linear_power_on_irregular_times() -> None:
    # P(t) = 100 + 50 t on [0, 2]: integral 200 + 100 = 300 J, whatever the spacing.
    times = [0.0, 0.013, 0.4, 0.41, 1.2, 1.99, 2.0]
    assert trapezoid(times, [100 + 50 * t for t in times]) == pytest.approx(300.0)
    assert trapezoid([0.0], [5.0]) == 0.0
    with pytest.raises(ValueError):
        trapezoid([0.0, 1.0], [1.0])


def test_power_integrator_converges_on_a_sine_trace_sampled_irregularly() -> None:
    # P(t) = 200 + 100 sin(t) on [0, pi]: integral 200 pi + 200.
    import random

    rng = random.Random(1)
    t, integ = 0.0, PowerIntegrator()
    while t < math.pi:
        integ.add(t, 200 + 100 * math.sin(t))
        t = min(math.pi, t + rng.uniform(0.005, 0.02))  # 50-200 Hz, jittered
        if t == math.pi:
            integ.add(t, 200 + 100 * math.sin(t))
            break
    assert integ.joules == pytest.approx(200 * math.pi + 200, rel=1e-4)
    before = integ.joules
    assert integ.add(1.0, 1e6) == before  # a late, out-of-order sample is dropped


def test_counter_delta_and_wraparound() -> None:
    assert counter_delta(10.0, 25.0, 100.0) == 15.0
    assert counter_delta(90.0, 5.0, 100.0) == 15.0  # wrapped once
    assert counter_delta(90.0, 5.0, None) is None  # went back: unknown, never 0
    c = WrappingCounter(max_range=1000.0)
    for raw in (900.0, 990.0, 20.0, 500.0, 100.0):  # two wraps
        total = c.update(raw)
    assert total == pytest.approx(90 + 30 + 480 + 600)
    reset = WrappingCounter(max_range=None)
    reset.update(50.0)
    assert reset.update(10.0) is None and reset.update(20.0) is None


# -- RAPL ---------------------------------------------------------------------------------


def _zone(root: Path, name: str, label: str, uj: int, max_uj: int = 1_000_000) -> Path:
    z = root / name
    z.mkdir(parents=True)
    (z / "name").write_text(label + "\n")
    (z / "energy_uj").write_text(f"{uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


def test_rapl_counts_packages_and_dram_not_core_or_psys_and_unwraps(tmp_path: Path) -> None:
    pkg = _zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    dram = _zone(tmp_path, "intel-rapl:0:2", "dram", 100)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)
    _zone(tmp_path, "intel-rapl:1", "psys", 7)
    zones, reason = find_zones(tmp_path)
    assert reason is None
    meter = RaplMeter(zones)
    assert [(d.id, d.kind, d.method) for d in meter.devices] == [
        ("cpu-package-0", "cpu", RAPL),
        ("dram-0", "dram", RAPL),
    ]
    start = meter.read()
    (pkg / "energy_uj").write_text("950000")  # +50 mJ
    meter.read()  # the poller's wrap guard
    (pkg / "energy_uj").write_text("200000")  # wrapped: +50 mJ + 200 mJ
    (dram / "energy_uj").write_text("3100")
    end = meter.read()
    assert end["cpu-package-0"] - start["cpu-package-0"] == pytest.approx(0.3)  # type: ignore[operator]
    assert end["dram-0"] - start["dram-0"] == pytest.approx(0.003)  # type: ignore[operator]


def test_rapl_absent_or_unreadable_says_why(tmp_path: Path) -> None:
    assert find_zones(tmp_path / "nope") == ([], f"{tmp_path / 'nope'} not present")
    z = _zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (z / "energy_uj").unlink()
    (z / "energy_uj").mkdir()  # unreadable as a file, like a root-only counter
    zones, reason = find_zones(tmp_path)
    assert zones == [] and reason is not None and "root only" in reason


# -- NVML (a stand-in module: the reading functions are the real interface) -------------


class FakeNvml:
    class NVMLError(Exception):
        pass

    def __init__(self, gpus: list[dict[str, Any]]) -> None:
        self.gpus = gpus
        self.shutdown = False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict[str, Any]:
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: dict[str, Any]) -> bytes:
        return h["name"].encode()  # old bindings return bytes

    def nvmlDeviceGetUUID(self, h: dict[str, Any]) -> str:
        return str(h["uuid"])

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54"

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        return SimpleNamespace(total=80 * 2**30, used=0, free=80 * 2**30)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: dict[str, Any]) -> int:
        if "energy_mj" not in h:
            raise self.NVMLError("Not Supported")
        return int(h["energy_mj"])

    def nvmlDeviceGetPowerUsage(self, h: dict[str, Any]) -> int:
        return int(h["power_mw"])

    def nvmlDeviceGetComputeRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in h.get("procs", [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        raise self.NVMLError("Not Supported")


def _gpus() -> list[dict[str, Any]]:
    return [
        {"name": "H100", "uuid": "GPU-aaaa-1111", "energy_mj": 1_000_000, "power_mw": 70_000},
        {"name": "T4", "uuid": "GPU-bbbb-2222", "power_mw": 30_000},
    ]


def test_cuda_visible_devices_by_index_and_uuid_in_cuda_order() -> None:
    nvml = FakeNvml(_gpus())
    gpus = nvml.gpus
    assert visible_gpus(nvml, {}) == (gpus, None)
    assert visible_gpus(nvml, {"CUDA_VISIBLE_DEVICES": "1,0"}) == ([gpus[1], gpus[0]], None)
    assert visible_gpus(nvml, {"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}) == ([gpus[1]], None)
    assert visible_gpus(nvml, {"CUDA_VISIBLE_DEVICES": "0,7,1"}) == ([gpus[0]], None)
    none, reason = visible_gpus(nvml, {"CUDA_VISIBLE_DEVICES": ""})
    assert none == [] and reason is not None and "no GPU visible" in reason
    assert visible_gpus(FakeNvml([]), {}) == ([], "no NVIDIA GPU")


def test_nvml_counter_and_polling_per_gpu_with_device_facts() -> None:
    nvml = FakeNvml(_gpus())
    now = [0.0]
    meter = NvmlMeter(nvml, nvml.gpus, poll_hz=10, clock=lambda: now[0])
    h100, t4 = meter.devices
    assert (h100.method, t4.method) == (NVML_COUNTER, NVML_POLLING)
    assert h100.info["name"] == "H100" and h100.info["driver"] == "550.54"
    assert h100.info["memory_total_mb"] == 80 * 1024 and h100.kind == GPU
    start = meter.read()
    # 2 s: the H100's counter gains 500 J; the T4 ramps 30 W -> 50 W, polled irregularly.
    for t, mw in ((0.07, 30_000), (0.5, 35_000), (1.3, 45_000), (2.0, 50_000)):
        now[0] = t
        nvml.gpus[1]["power_mw"] = mw
        meter.poll_power()
    nvml.gpus[0]["energy_mj"] += 500_000
    end = meter.read()
    assert end["gpu0"] - start["gpu0"] == pytest.approx(500.0)  # type: ignore[operator]
    expected = trapezoid([0, 0.07, 0.5, 1.3, 2.0, 2.0], [30, 30, 35, 45, 50, 50])
    assert end["gpu1"] - start["gpu1"] == pytest.approx(expected)  # type: ignore[operator]
    meter.close()
    assert nvml.shutdown


def test_nvml_peak_memory_of_this_process_tree_only() -> None:
    import os

    gpus = _gpus()
    gpus[0]["procs"] = [(os.getpid(), 3 * 2**30), (999_999_999, 50 * 2**30)]
    gpus[1]["procs"] = [(os.getpid(), 2**30)]
    meter = NvmlMeter(FakeNvml(gpus), gpus, poll_hz=10)
    meter.poll_memory()
    gpus[0]["procs"] = [(os.getpid(), 2**30)]
    meter.poll_memory()
    assert meter.peak_memory_bytes == 4 * 2**30


# -- the monitor: windows, nesting, idle baseline, honesty ------------------------------


class ScriptedMeter:
    """A meter whose cumulative joules the test sets."""

    def __init__(self, device_id: str, kind: str, method: str) -> None:
        from fleetbench.meters.devices import Device

        self.devices = [Device(device_id, kind, method)]
        self.joules: float | None = 0.0

    def read(self) -> dict[str, float | None]:
        return {self.devices[0].id: self.joules}

    def attach(self, poller: Poller) -> None:
        pass

    def close(self) -> None:
        pass


def _monitor(*meters: Any) -> tuple[EnergyMonitor, list[float]]:
    now = [0.0]
    mon = EnergyMonitor(list(meters), CpuTime(), {"rapl": "test"}, clock=lambda: now[0])
    return mon, now


def test_nested_windows_and_idle_subtraction() -> None:
    gpu = ScriptedMeter("gpu0", "gpu", NVML_COUNTER)
    pkg = ScriptedMeter("cpu-package-0", "cpu", RAPL)
    mon, now = _monitor(gpu, pkg)
    mon.idle_w = {"gpu0": 50.0, "cpu-package-0": 10.0}
    run = mon.begin()
    for i in range(3):  # three 1-s samples at 250 W GPU, 30 W CPU
        sample = mon.begin()
        now[0] += 1.0
        gpu.joules += 250.0  # type: ignore[operator]
        pkg.joules += 30.0  # type: ignore[operator]
        r = mon.end(sample)
        assert r.wh("gpu") == pytest.approx(200 / 3600)  # (250 - 50) J
        assert r.wh("gpu", net=False) == pytest.approx(250 / 3600)
        assert r.wh("cpu") == pytest.approx(20 / 3600)
        fields = r.sample_fields()
        assert fields["energy_wh"] == pytest.approx(220 / 3600)
        assert fields["energy_method"] == "nvml-counter+rapl"
        assert i < 3
    whole = mon.end(run)
    assert whole.duration_s == 3.0
    assert whole.wh("gpu") == pytest.approx(600 / 3600)
    assert whole.wh("gpu", net=False) == pytest.approx(750 / 3600)


def test_net_never_below_zero_and_unreadable_is_none_not_zero() -> None:
    gpu = ScriptedMeter("gpu0", "gpu", NVML_POLLING)
    mon, now = _monitor(gpu)
    mon.idle_w = {"gpu0": 100.0}
    w = mon.begin()
    now[0] += 1.0
    gpu.joules = 60.0  # below idle: noise, measured as 0 net
    r = mon.end(w)
    assert r.wh("gpu") == 0.0 and r.wh("gpu", net=False) == pytest.approx(60 / 3600)
    w = mon.begin()
    gpu.joules = None  # the read failed
    r = mon.end(w)
    assert r.wh("gpu") is None and r.sample_fields()["energy_wh"] is None
    assert r.wh("cpu") is None  # no CPU meter at all: unknown, not 0


def test_measure_idle_uses_real_meters_and_skips_the_estimate() -> None:
    est = EstimateMeter(CpuTime(), 10.0, "test")
    mon, _ = _monitor(est)
    mon.clock = time.monotonic
    assert mon.measure_idle(0.2) == {} and mon.record()["idle_baseline_s"] is None

    class Steady(ScriptedMeter):
        def read(self) -> dict[str, float | None]:
            return {"gpu0": 40.0 * time.monotonic()}  # a constant 40 W

    mon, _ = _monitor(Steady("gpu0", "gpu", NVML_COUNTER), est)
    mon.clock = time.monotonic
    idle = mon.measure_idle(0.2)
    assert idle == {"gpu0": pytest.approx(40.0, rel=0.05)}
    assert 0.19 < mon.record()["idle_baseline_s"] < 0.5


def test_probe_here_falls_back_to_the_labelled_estimate(tmp_path: Path) -> None:
    mon = EnergyMonitor.probe(MeterSettings(powercap_root=tmp_path / "none", nvml=None))
    try:
        assert not mon.measured
        rec = mon.record()
        assert [d["method"] for d in rec["devices"]] == ["estimate"]
        assert "gpu" in rec["unmeasured"] and "not present" in rec["unmeasured"]["rapl"]
        w = mon.begin()
        burn_cpu()
        r = mon.end(w)
        f = r.sample_fields()
        assert f["energy_method"] == "estimate" and f["gpu_energy_wh"] is None
        assert f["cpu_energy_wh"] == f["energy_wh"] == f["cpu_energy_gross_wh"]
        assert f["energy_wh"] > 0 and f["cpu_seconds"] > 0
    finally:
        mon.close()


def test_probe_with_gpus_and_rapl(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    nvml = FakeNvml(_gpus())
    mon = EnergyMonitor.probe(MeterSettings(powercap_root=tmp_path, nvml=nvml, poll_hz=50))
    try:
        methods = {d["id"]: d["method"] for d in mon.record()["devices"]}
        assert methods == {"gpu0": NVML_COUNTER, "gpu1": NVML_POLLING, "cpu-package-0": RAPL}
        assert mon.unmeasured == {} and mon.measured
        time.sleep(0.15)
        assert mon.poller.ticks >= 3  # polling the T4 in the background
    finally:
        mon.close()


def test_watts_per_core_override_table_and_default() -> None:
    assert watts_per_core("AMD EPYC 7763 64-Core Processor", 12.0, 10.0)[0] == 12.0
    w, source = watts_per_core("AMD EPYC 7763 64-Core Processor", None, 10.0)
    assert w == pytest.approx(280 / 64) and "TDP 280 W" in source
    w, source = watts_per_core("AMD EPYC", None, 7.5)
    assert w == 7.5 and source.startswith("default")


def test_poller_survives_a_failing_task_and_accounts_its_cpu() -> None:
    calls: list[int] = []

    def busy() -> None:  # 2 ms of this thread's CPU per call
        end = time.thread_time() + 0.002
        while time.thread_time() < end:
            pass
        calls.append(1)

    poller = Poller()
    poller.add("ok", 100, busy)
    poller.add("bad", 100, lambda: 1 / 0)
    started = time.monotonic()
    poller.start()
    time.sleep(0.2)
    poller.stop()
    wall = time.monotonic() - started
    assert len(calls) >= 5  # the failing task did not stop the loop
    # Its own thread's CPU: at least what the task burnt, at most the wall time it ran.
    assert len(calls) * 0.002 <= poller.cpu_seconds <= wall


def test_cpu_time_counts_children_but_not_what_they_spent_before_being_seen() -> None:
    import subprocess
    import sys

    import psutil

    def burner() -> tuple[subprocess.Popen[bytes], psutil.Process]:
        proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return proc, psutil.Process(proc.pid)

    def used(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    cpu = CpuTime()
    cpu.LIST_EVERY_S = 3600.0  # list descendants only when the test says so
    child, ps_child = burner()
    try:
        time.sleep(0.5)
        before = cpu.refresh()  # not listed yet: the child's CPU is unseen
        seen = cpu.refresh(relist=True)  # first seen, born before the previous read
        at_seen = used(ps_child)
        assert at_seen > 0.05 and seen - before < 0.05
        time.sleep(0.5)
        later = cpu.refresh()
        assert later - seen >= 0.8 * (used(ps_child) - at_seen)
    finally:
        child.kill()
        child.wait()
    fresh = CpuTime()
    fresh.LIST_EVERY_S = 0.0
    other, ps_other = burner()
    try:
        time.sleep(0.5)
        total = fresh.refresh()  # born after the previous read: counts from zero
        assert total >= 0.8 * used(ps_other) > 0
    finally:
        other.kill()
        other.wait()


def test_an_nvml_failure_is_recorded_and_never_stops_the_run(tmp_path: Path) -> None:
    class Broken(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            raise self.NVMLError("GPU is lost")

    mon = EnergyMonitor.probe(MeterSettings(powercap_root=tmp_path, nvml=Broken(_gpus())))
    try:
        assert mon.unmeasured["gpu"] == "NVML error: GPU is lost"
        assert [d.method for m in mon.meters for d in m.devices] == ["estimate"]
    finally:
        mon.close()


def test_nvml_peak_power_of_counter_and_polled_gpus() -> None:
    nvml = FakeNvml(_gpus())
    meter = NvmlMeter(nvml, nvml.gpus, poll_hz=10)
    for mw0, mw1 in ((100_000, 30_000), (350_000, 55_000), (200_000, 40_000)):
        nvml.gpus[0]["power_mw"], nvml.gpus[1]["power_mw"] = mw0, mw1
        meter.poll_power()
    assert meter.peak_power_w == {"gpu0": 350.0, "gpu1": 55.0}
