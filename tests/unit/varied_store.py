"""A small store with every awkward case the aggregates handle: several rounds, failed
samples, unknown (NULL) tokens, energy, costs and timestamps, per-device and legacy
energy, resumed attempts, categories, samples beyond the current plan, load profiles
with an SLO, scored and unscored tasks. The SQL aggregates must give exactly what the
per-sample Python rules give on it (``test_aggregate_sql.py``)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from fleetbench.store import COMPLETED, FAILED, Store
from fleetbench.store.rows import SampleRow


def _run(run_id: str, task: str, backend: str = "llamacpp", **config: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model_name": run_id.split("__")[0],
        "model_class": "B",
        "task": task,
        "reasoning_state": "",
        "backend": backend,
        "settings_label": "greedy",
        "config": {"model": {"name": run_id, "tags": ["local"]}, "task": {"name": task}} | config,
    }


def build(folder: Path, seed: int = 3) -> Store:
    """Write the store into ``folder`` and return it open."""
    rng = random.Random(seed)
    store = Store.in_dir(folder)
    store.begin_batch("b1", "varied", "test", {}, {}, {})
    slo = {"load": {"profile": "constant", "rate_rps": 4.0}, "slo": {"latency_ms": 900}}
    runs = [
        # (run, planned, rounds, attempts per round, shape)
        (_run("alpha__custom__greedy", "custom"), 6, 3, 1, "scored"),
        (_run("beta__textgen__greedy", "textgen"), 5, 1, 2, "nulls"),
        (
            _run("gamma__textgen__greedy", "textgen", backend="openai", backend_options=slo),
            4,
            2,
            1,
            "load",
        ),
        (_run("delta__custom__greedy", "custom", energy={"client_only": False}), 5, 1, 1, "legacy"),
        (_run("eps__textgen__greedy", "textgen"), 3, 1, 1, "allfail"),
        (_run("zeta__textgen__greedy", "textgen"), 4, 0, 0, "empty"),
    ]
    t = 1_700_000_000.0
    for run, planned, rounds, attempts, shape in runs:
        store.upsert_run(run, "b1", planned)
        for k in range(1, rounds + 1):
            # a round measured over `attempts` attempts (a resumed round), with one sample
            # beyond the current plan (an earlier, longer plan) in round 1
            indices = list(range(planned + (1 if k == 1 else 0)))
            if shape == "scored" and k == 2:
                indices = indices[:-2]  # an incomplete round
            chunks = [indices[i::attempts] for i in range(attempts)]
            for chunk in chunks:
                a = store.start_attempt(run["run_id"], "b1", {}, [k])
                if shape != "legacy":
                    store.update_attempt(
                        run["run_id"], a, load_time_s=rng.random(), peak_rss_mb=100 + a,
                        startup_s=0.5 * a, details_json=json.dumps({"model_disk_bytes": 123}),
                        energy_json=json.dumps({"scope": "in-process", "devices": [],
                                                "idle_w": {}, "idle_baseline_s": 1.0}),
                    )  # fmt: skip
                rows = []
                for i in sorted(chunk):
                    rows.append(_sample(rng, run["run_id"], k, i, a, shape, t))
                    t += 0.7 + rng.random()
                store.add_samples(rows)
                store.finish_attempt(run["run_id"], a, COMPLETED, None)
        store.set_run_status(run["run_id"], FAILED if shape == "allfail" else COMPLETED)
    store.finish_batch("b1", COMPLETED)
    return store


def _sample(
    rng: random.Random, run_id: str, k: int, i: int, attempt: int, shape: str, t: float
) -> SampleRow:
    failed = shape == "allfail" or (i + k) % 4 == 3
    latency = 0.1 + rng.random()
    category = ["retail", "finance", None][i % 3]
    inputs: dict[str, Any] = {"prompt": f"question {i}?"}
    if category:
        inputs["category"] = category
    per_device = shape != "legacy"
    unknown = shape == "nulls" and i % 2 == 0
    scores = None
    if shape in ("scored", "legacy") and not failed:
        scores = json.dumps({"correct": int(rng.random() < 0.6), "f1": rng.random()})
    return SampleRow(
        run_id=run_id,
        round=k,
        sample_index=i,
        sample_id=f"q{i}",
        input_json=json.dumps(inputs),
        output_text="" if failed else f"<think>hm</think>answer {i}",
        answer_text=None if failed else f"answer {i}",
        reasoning_text=None if failed else "hm",
        reasoning_tokens=None if unknown or failed else 3,
        prompt_tokens=None if unknown else 10 + i,
        completion_tokens=None if unknown or failed else 20 + i,
        latency_s=None if failed and i % 2 else latency,
        ttft_s=None if shape == "nulls" else latency / 7,
        itl_s=None if failed else latency / 50,
        sent_at=None if shape == "legacy" and i == 1 else t,
        received_at=None if shape == "legacy" and i == 1 else t + latency,
        intended_send_at=t - 0.01 * i if shape == "load" else None,
        actual_send_at=t if shape == "load" else None,
        finish_reason="length" if i == 2 else "stop",
        token_source=None if unknown else ("usage" if i % 2 else "exact"),
        retries=i % 2,
        cpu_seconds=None if shape == "nulls" and i == 1 else latency * 0.9,
        energy_wh=None if shape == "nulls" and i == 3 else latency * 1e-3,
        energy_method="nvml+rapl" if per_device else "estimate",
        gpu_energy_wh=latency * 7e-4 if per_device else None,
        gpu_energy_gross_wh=latency * 9e-4 if per_device else None,
        cpu_energy_wh=latency * 3e-4 if per_device else None,
        cpu_energy_gross_wh=latency * 4e-4 if per_device else None,
        cost_usd=None if shape == "nulls" and i == 0 else 1e-5 * (i + 1),
        scores_json=scores,
        error=("HTTP 503" if failed else None),
        attempt=attempt,
    )


def sample_row(
    run_id: str, k: int, i: int, attempt: int, sent_at: float, latency: float
) -> SampleRow:
    """A plain successful sample."""
    return SampleRow(
        run_id=run_id, round=k, sample_index=i, sample_id=f"q{i}", input_json="{}",
        output_text="a", prompt_tokens=5, completion_tokens=9, latency_s=latency,
        ttft_s=latency / 4, sent_at=sent_at, received_at=sent_at + latency,
        finish_reason="stop", cpu_seconds=latency, energy_wh=latency * 1e-3,
        energy_method="estimate", scores_json=json.dumps({"correct": i % 2}), error=None,
        attempt=attempt,
    )  # fmt: skip
