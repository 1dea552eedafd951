"""benchmarks/gpu_validate.py keeps working without a GPU: its CPU self-test builds the
model, runs fleetbench on it and writes the table as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_validate.py"


def test_cpu_self_test(tmp_path: Path) -> None:
    env = dict(os.environ, OUT=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = json.loads((tmp_path / "gpu_validate.json").read_text())
    rows = {r["check"]: r for r in document["rows"]}
    assert document["gpu"] is False
    assert rows["fleetbench run exit code"]["ok"] is True
    assert rows["tokens/s"]["ok"] is True
    assert rows["fit check: 100,000B entry skipped"]["ok"] is True
    assert rows["two CPU slots"]["ok"] is True
    assert (
        "no NVIDIA GPU" in rows["meters: why no GPU"]["value"] or rows["meters: why no GPU"]["ok"]
    )
    assert not [r for r in document["rows"] if r["ok"] is False]
    assert "PASS" in proc.stdout
