"""The Ray executor on a real local Ray instance: the same results as one-by-one, and
only the coordinator writes the store (workers stream their samples back)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PlanWriter, db_rows, run_cli

pytest.importorskip("ray")


def test_ray_batch_matches_sequential(tmp_path: Path, write_plan: PlanWriter) -> None:
    echo = {"name": "echo", "backend": "fakebackends:FlakyEchoBackend",
            "options": {"fail_on": [1]}}  # fmt: skip
    plan = write_plan(extra_models=[echo], max_tokens=8, limit=3)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    seq = run_cli("run", str(plan), "-o", "seq", cwd=tmp_path)
    ray = run_cli(
        "run", str(plan), "-o", "ray", "--executor", "ray", "--ray-address", "local",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert seq.returncode == ray.returncode, seq.stdout + ray.stdout + ray.stderr

    query = (
        "SELECT r.model_name, s.sample_index, s.output_text, s.completion_tokens, s.error, "
        "s.attempt FROM samples s JOIN runs r USING (run_id) ORDER BY 1, 2"
    )
    assert [tuple(r) for r in db_rows(tmp_path / "ray", query)] == [
        tuple(r) for r in db_rows(tmp_path / "seq", query)
    ]
    attempts = db_rows(tmp_path / "ray", "SELECT status, load_time_s, energy_json FROM attempts")
    assert len(attempts) == 2
    # written by the coordinator from the workers' streamed updates
    assert all(a["load_time_s"] is not None and a["energy_json"] for a in attempts)
    assert (tmp_path / "ray" / "master_results.csv").read_text().count("\n") == 3
