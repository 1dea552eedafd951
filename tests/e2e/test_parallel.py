"""The local parallel executor: same results as one-by-one, GPU slots of their own,
timeouts that stay local to a run, and kill -9 at random moments."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from conftest import PlanWriter, cli_env, db_rows, run_cli
from fakenvml import ENV, STUB_DIR, gpu


def samples(out: Path) -> list[tuple[Any, ...]]:
    rows = db_rows(
        out,
        "SELECT r.model_name, s.sample_index, s.output_text, s.completion_tokens "
        "FROM samples s JOIN runs r USING (run_id) ORDER BY r.model_name, s.sample_index",
    )
    return [tuple(r) for r in rows]


def two_models(write_plan: PlanWriter, **top: Any) -> Path:
    twin = {"name": "smollm2-twin", "backend": "llamacpp", "model_class": "A"}
    return write_plan(extra_models=[twin], max_tokens=8, **top)


def test_parallel_matches_sequential(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = two_models(write_plan, limit=3)
    seq = run_cli("run", str(plan), "-o", "seq", cwd=tmp_path)
    par = run_cli("run", str(plan), "-o", "par", "--parallel", "2", cwd=tmp_path)
    assert seq.returncode == 0 and par.returncode == 0, seq.stderr + par.stderr
    assert samples(tmp_path / "par") == samples(tmp_path / "seq")  # greedy: same texts
    assert len(samples(tmp_path / "par")) == 6
    slots = {r["slot"] for r in db_rows(tmp_path / "par", "SELECT slot FROM attempts")}
    assert slots == {"cpu 1", "cpu 2"}
    starts = db_rows(tmp_path / "par", "SELECT started_at, finished_at FROM attempts")
    assert max(s["started_at"] for s in starts) < min(s["finished_at"] for s in starts)


def test_dry_run_shows_slots(tmp_path: Path, write_plan: PlanWriter) -> None:
    plan = two_models(write_plan, executor={"kind": "local", "workers": 2})
    dry = run_cli("run", str(plan), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "slot" in dry.stdout and "cpu 1" in dry.stdout and "cpu 2" in dry.stdout


def test_gpu_runs_get_gpus_of_their_own(tmp_path: Path) -> None:
    """Three one-GPU runs on two (fake) GPUs: never two on one GPU at a time; what each
    worker saw in CUDA_VISIBLE_DEVICES is recorded with its attempt."""
    inventory = [gpu(0, free_gib=70), gpu(1, free_gib=70)]
    models = [
        {"name": f"g{i}", "backend": "fakebackends:GpuEchoBackend", "params_b": 7,
         "options": {"delay_s": 0.4}}
        for i in range(3)
    ]  # fmt: skip
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(3)))
    plan = {
        "models": models,
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
        "executor": {"kind": "local", "workers": 3},
        "energy": {"idle_baseline_s": 0},
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(STUB_DIR), env["PYTHONPATH"]])
    env[ENV] = json.dumps(inventory)
    proc = subprocess.run(
        [sys.executable, "-m", "fleetbench", "run", "plan.yaml", "-o", "out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = db_rows(
        tmp_path / "out",
        "SELECT a.run_id, a.slot, a.cuda_visible_devices, a.started_at, a.finished_at, "
        "(SELECT output_text FROM samples s WHERE s.run_id = a.run_id LIMIT 1) AS seen "
        "FROM attempts a",
    )
    uuids = {g["uuid"] for g in inventory}
    assert len(rows) == 3
    for r in rows:
        assert r["cuda_visible_devices"] in uuids and r["seen"] == r["cuda_visible_devices"]
        assert r["slot"].startswith("gpu ")
    for a in rows:
        for b in rows:
            overlap = a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
            if a["run_id"] != b["run_id"] and overlap:
                assert a["cuda_visible_devices"] != b["cuda_visible_devices"]


def test_one_timeout_does_not_disturb_the_others(tmp_path: Path, prompts_file: Path) -> None:
    models = [
        {"name": "hangs", "backend": "fakebackends:HangingBackend"},
        {"name": "echo", "backend": "fakebackends:FlakyEchoBackend"},
        {"name": "slow-echo", "backend": "fakebackends:GpuEchoBackend",
         "options": {"delay_s": 0.5, "gpus": 0}},
    ]  # fmt: skip
    plan = {
        "models": models,
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts_file)}}],
        "limit": 3,
        "timeout_s": 20,
        "energy": {"idle_baseline_s": 0},
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    result = run_cli("run", "plan.yaml", "-o", "out", "--parallel", "3", cwd=tmp_path)
    assert result.returncode == 1  # the hanging run failed
    runs = {r["model_name"]: r for r in db_rows(tmp_path / "out", "SELECT * FROM runs")}
    assert runs["hangs"]["status"] == "failed"
    assert "timed out" in (runs["hangs"]["error_message"] or "")
    assert runs["echo"]["status"] == "completed" and runs["slow-echo"]["status"] == "completed"
    counts = {r[0]: r[1] for r in db_rows(
        tmp_path / "out", "SELECT run_id, COUNT(*) FROM samples GROUP BY run_id")}  # fmt: skip
    assert sorted(counts.values()) == [3, 3]
    attempts = db_rows(tmp_path / "out", "SELECT run_id, started_at, finished_at FROM attempts")
    assert max(a["started_at"] for a in attempts) < min(a["finished_at"] for a in attempts)


def test_kill9_at_random_moments_then_resume(tmp_path: Path) -> None:
    """Chaos: a parallel batch killed (whole process group, SIGKILL) at ten random
    moments, resumed each time; in the end every run has exactly its planned samples.
    The batch is long enough (2 runs x 40 samples) that the kills land in start-up, in
    loading and between or inside samples (on a fast machine the last ones may find it
    done: they are not counted)."""
    n = 40
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Count to {i}."}) + "\n" for i in range(n)))
    models = [{"name": m, "backend": "llamacpp", "model_class": "A"} for m in ("a", "b")]
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "models": models,
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
        "generation": {"temperature": 0.0, "max_tokens": 32, "seed": 7},
        "energy": {"idle_baseline_s": 0},
    }))  # fmt: skip
    out = tmp_path / "out"
    rng = random.Random(20261202)
    landed: list[int] = []  # samples stored after each kill that landed while it ran
    for _ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetbench", "run", str(plan), "-o", str(out), "-j", "2"],
            cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        time.sleep(rng.uniform(0.5, 6.0))
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rows = samples(out) if (out / "fleetbench.db").exists() else []
        keys = [(r[0], r[1]) for r in rows]
        assert len(keys) == len(set(keys)), "a sample was stored twice"
        if killed:
            landed.append(len(keys))
    # On a fast machine the batch may be done before the last kills (they then land
    # in the report or start-up of a batch with nothing to do): what matters is that
    # kills landed while it ran, and some between its samples.
    assert len(landed) >= 5, f"only {len(landed)} of 10 kills landed while the batch ran"
    assert any(0 < c < 2 * n for c in landed), f"no kill landed between samples: {landed}"
    final = run_cli("run", str(plan), "-o", str(out), "-j", "2", cwd=tmp_path)
    assert final.returncode == 0, final.stdout + final.stderr
    rows = samples(out)
    assert sorted((r[0], r[1]) for r in rows) == [(m, i) for m in ("a", "b") for i in range(n)]
    with open(out / "master_results.csv", newline="") as f:
        master = {r["model_name"]: r for r in csv.DictReader(f)}
    for model in ("a", "b"):
        assert master[model]["status"] == "completed"
        assert int(master[model]["samples_stored"]) == n


def test_checkpoint_sweep_runs_over_the_slots_in_step_order(tmp_path: Path) -> None:
    from fleetbench.catalog import embedded_model_path

    root = tmp_path / "train"
    root.mkdir()
    for step in (30, 10, 20):
        (root / f"step_{step}.gguf").symlink_to(embedded_model_path())
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "Say hi."}) + "\n")
    plan = {
        "catalog": {"path": "train"},
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
        "generation": {"max_tokens": 4},
        "executor": {"kind": "local", "workers": 2},
        "energy": {"idle_baseline_s": 0},
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    dry = run_cli("run", "plan.yaml", "--dry-run", "-o", "out", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    steps = [
        step
        for line in dry.stdout.splitlines()
        if "cpu" in line
        for step in ("step_10", "step_20", "step_30")
        if step in line
    ]  # the table lists the runs in the order they would start
    assert steps == ["step_10", "step_20", "step_30"], dry.stdout
    result = run_cli("run", "plan.yaml", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on cpu 1" in result.stdout and "on cpu 2" in result.stdout
    runs = db_rows(tmp_path / "out", "SELECT run_id, status FROM runs")
    assert len(runs) == 3 and {r["status"] for r in runs} == {"completed"}
    for r in runs:  # each checkpoint its own run folder
        assert (tmp_path / "out" / "runs" / r["run_id"] / "results.jsonl").is_file()
