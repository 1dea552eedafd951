"""Slots of the local executor: compute, network and GPUs (with a fake inventory)."""

from __future__ import annotations

from fleetbench.meters.nvml import GpuMemory
from fleetbench.runner.executors.resources import Demand, ResourcePool
from fleetbench.runner.plan import ExecutorSettings

GIB = 2**30


def gpus(*free_gib: float) -> list[GpuMemory]:
    return [
        GpuMemory(i, f"GPU-{i:04d}", "H100", int(f * GIB), 80 * GIB) for i, f in enumerate(free_gib)
    ]


def pool(gpu_list: list[GpuMemory] | None = None, **settings: object) -> ResourcePool:
    return ResourcePool(ExecutorSettings.model_validate(settings), gpu_list or [])


def test_compute_slots_and_network_slots_are_separate() -> None:
    p = pool(workers=2, network_workers=1)
    a, b = p.acquire(Demand("cpu")), p.acquire(Demand("cpu"))
    assert a is not None and b is not None and {a.label, b.label} == {"cpu 1", "cpu 2"}
    assert p.acquire(Demand("cpu")) is None  # both compute slots taken
    net = p.acquire(Demand("network"))
    assert net is not None and net.kind == "network"
    assert p.acquire(Demand("network")) is None
    p.release(a, Demand("cpu"))
    again = p.acquire(Demand("cpu"))
    assert again is not None and again.label == a.label


def test_network_runs_take_compute_slots_without_network_workers() -> None:
    p = pool(workers=1, network_workers=0)
    slot = p.acquire(Demand("network"))
    assert slot is not None and slot.kind == "cpu"
    assert p.acquire(Demand("network")) is None


def test_each_gpu_run_gets_gpus_of_its_own() -> None:
    p = pool(gpus(70, 20), workers=4)
    first = p.acquire(Demand("gpu", gpus=1, need_bytes=10 * GIB))
    second = p.acquire(Demand("gpu", gpus=1, need_bytes=10 * GIB))
    assert first is not None and second is not None
    assert first.gpus == ("GPU-0000",) and second.gpus == ("GPU-0001",)  # most free first
    assert p.acquire(Demand("gpu", gpus=1, need_bytes=1 * GIB)) is None  # no sharing
    assert p.acquire(Demand("cpu")) is not None  # CPU runs still run alongside
    p.release(first, Demand("gpu", gpus=1, need_bytes=10 * GIB))
    third = p.acquire(Demand("gpu", gpus=1))
    assert third is not None and third.gpus == ("GPU-0000",)


def test_gpu_share_only_when_both_fit() -> None:
    p = pool(gpus(30), workers=4, gpu_share=True)
    a = p.acquire(Demand("gpu", gpus=1, need_bytes=12 * GIB))
    b = p.acquire(Demand("gpu", gpus=1, need_bytes=12 * GIB))
    assert a is not None and b is not None and a.gpus == b.gpus == ("GPU-0000",)
    assert p.acquire(Demand("gpu", gpus=1, need_bytes=12 * GIB)) is None  # 36 > 30 GiB
    assert p.acquire(Demand("gpu", gpus=1, need_bytes=None)) is None  # unknown need: alone


def test_multi_gpu_fixed_devices_and_spread() -> None:
    p = pool(gpus(80, 80, 80), workers=4)
    tp2 = p.acquire(Demand("gpu", gpus=2))
    assert tp2 is not None and len(tp2.gpus or ()) == 2
    assert p.acquire(Demand("gpu", gpus=-1)) is None  # a layer split needs every GPU idle
    fixed = p.acquire(Demand("gpu", gpus=1, devices=(2,)))
    assert fixed is not None and fixed.gpu_indices == (2,)
    assert p.impossible(Demand("gpu", gpus=4)) == "needs 4 GPUs, the pool has 3"
    assert p.impossible(Demand("gpu", gpus=1, devices=(5,))) == "needs GPU 5, the pool has 3 GPU(s)"
    assert p.impossible(Demand("gpu", gpus=1)) is None


def test_compute_slots_get_disjoint_cores() -> None:
    import os

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return  # one core: nothing to split (a slot then uses it unpinned)
    p = pool(workers=2)
    a, b = p.acquire(Demand("cpu")), p.acquire(Demand("cpu"))
    assert a is not None and b is not None and a.cpus and b.cpus
    assert not set(a.cpus) & set(b.cpus)
    single = pool(workers=1).acquire(Demand("cpu"))
    assert single is not None and single.cpus is None  # one slot: every core
