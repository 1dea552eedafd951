"""Threads that fit the machine: physical cores available, contention from others."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from fleetbench.meters.host import CpuContention, available_cores

BURN = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


def test_available_cores_follows_affinity() -> None:
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    code = "import os; os.sched_setaffinity(0, {0}); from fleetbench.meters.host import " \
        "available_cores as a; print(a())"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    logical = len(os.sched_getaffinity(0))
    physical = psutil.cpu_count(logical=False) or logical
    assert 1 <= available_cores() <= min(logical, physical)


def test_contention_counts_other_processes_only() -> None:
    probe = CpuContention()
    burner = subprocess.Popen([sys.executable, "-c", BURN.format(s=1.5)])
    burner.wait()
    logical = len(os.sched_getaffinity(0))
    # one other process spun a core for 1.5 s; this process slept
    assert 0.5 < probe.others_load() <= logical + 0.5
    warning = probe.busy_warning(threads=logical)
    assert warning is not None and "not comparable" in warning
