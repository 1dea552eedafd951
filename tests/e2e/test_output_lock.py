"""Two batches never write into one output folder at once."""

from __future__ import annotations

from pathlib import Path

from conftest import PlanWriter, run_cli

from fleetbench.store.lock import OutputLock


def test_second_batch_on_same_output_is_refused(tmp_path: Path, write_plan: PlanWriter) -> None:
    out = tmp_path / "out"
    with OutputLock(out):
        proc = run_cli("run", str(write_plan()), "-o", str(out), "--smoke", cwd=tmp_path)
    assert proc.returncode == 2
    assert "another fleetbench batch" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (out / "fleetbench.db").exists()
    # the lock dies with its holder: the next batch proceeds
    again = run_cli("run", str(write_plan(max_tokens=4)), "-o", str(out), "--smoke", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
