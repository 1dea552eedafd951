"""Serving figures through the CLI: unknown token counts stay empty, and throughput is
what the server delivered (tokens ÷ wall time), also under concurrency."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PlanWriter, db_rows, run_cli
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)
from pacedserver import MODEL, PacedServer

TOKEN_FIGURES = (
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
    "per_request_tokens_per_second",
    "tokens_per_joule",
)


def master_row(output: Path, name: str) -> dict[str, str]:
    with open(output / "master_results.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["model_name"] == name)


def test_no_usage_and_no_tokenizer_leaves_token_figures_empty(
    tmp_path: Path,
    write_plan: PlanWriter,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    """llama_cpp.server streams without usage; no preset (no tokenize endpoint), a model
    id that is not the embedded one (no tokenizer found): nothing can count the tokens."""
    entry = {
        "name": "uncounted",
        "id": "someone/served-model",
        "backend": "openai",
        "options": {"base_url": llama_server.base_url, "model": ALIAS, "stream": True},
    }
    plan = write_plan(lead_models=[entry], extra_models=[], energy={"idle_baseline_s": 0})
    out = tmp_path / "out"
    proc = run_cli("run", str(plan), "-o", str(out), "--limit", "2", "-m", "uncounted",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    row = master_row(out, "uncounted")
    assert row["successful_prompts"] == "2"
    for figure in TOKEN_FIGURES:
        assert row[figure] == "", figure
    assert row["token_count_source"] == "unknown"
    reason = row["token_count_unknown_reason"]
    assert "completion tokens unknown for 2 of 2 successful samples" in reason
    assert "tokenizer_path" in reason
    assert float(row["requests_per_second"]) > 0  # a rate that needs no token count
    # A server fleetbench did not start: only the client would be metered.
    assert row["energy_scope"] == "client only"
    assert row["energy_wh"] == row["co2_emissions_g"] == ""
    assert row["energy_unmeasured_reason"].startswith("energy_scope client only: ")
    stored = db_rows(out, "SELECT completion_tokens, prompt_tokens, output_text FROM samples")
    assert [(s["completion_tokens"], s["prompt_tokens"]) for s in stored] == [(None, None)] * 2
    assert all(s["output_text"] for s in stored)  # the replies were real, only uncounted
    summary = json.loads((out / "runs" / row["run_id"] / "summary.json").read_text())["summary"]
    assert summary["total_completion_tokens"] is None and summary["tokens_per_joule"] is None
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "uncounted / textgen" in warnings[0]


def test_server_side_counts_come_after_the_generation_window(
    tmp_path: Path,
    write_plan: PlanWriter,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    """No GGUF known (a model id that is not the embedded one), a server with a tokenize
    endpoint: fleetbench asks it only after the round's last reply, so the stored
    generation window holds no tokenize call, and the counts are the server's."""
    import httpx
    from faultproxy import FaultProxy

    with FaultProxy(llama_server.root_url) as proxy:
        entry = {
            "name": "counted-later",
            "id": "someone/served-model",
            "backend": "openai",
            "options": {"preset": "llamacpp-server", "base_url": proxy.base_url,
                        "model": ALIAS, "concurrency": 2},
        }  # fmt: skip
        plan = write_plan(lead_models=[entry], extra_models=[], energy={"idle_baseline_s": 0})
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), "--limit", "3", "-m", "counted-later",
                       cwd=tmp_path)  # fmt: skip
        seen = list(proxy.seen)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    row = master_row(out, "counted-later")
    assert row["successful_prompts"] == "3" and row["token_count_source"] == "tokenize"
    stored = db_rows(out, "SELECT completion_tokens, output_text, received_at FROM samples")
    tokenize = [s.at for s in seen if s.path == "/extras/tokenize"]
    assert len(tokenize) == 3 + 1 and min(tokenize) >= max(s["received_at"] for s in stored)
    url = llama_server.root_url + "/extras/tokenize"

    def server_count(text: str) -> int:
        return len(httpx.post(url, json={"input": text}, timeout=30).json()["tokens"])

    assert [s["completion_tokens"] for s in stored] == [
        server_count(s["output_text"]) - server_count("") for s in stored
    ]
    assert row["total_completion_tokens"] == str(sum(s["completion_tokens"] for s in stored))
    assert float(row["throughput_tokens_per_second"]) > 0
    assert row["total_prompt_tokens"] == ""  # no template known: unknown, never guessed


def paced_plan(
    tmp_path: Path, base_url: str, concurrency: int, prompts: int, client_only: bool = False
) -> Path:
    prompts_file = tmp_path / "paced.jsonl"
    lines = [json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) for i in range(prompts)]
    prompts_file.write_text("\n".join(lines) + "\n")
    plan: dict[str, Any] = {
        "name": "paced",
        "models": [
            {
                "name": "paced",
                "id": "paced/model",
                "backend": "openai",
                "options": {"base_url": base_url, "model": MODEL, "concurrency": concurrency},
            }
        ],
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts_file)}}],
        "generation": {"max_tokens": 10},
        "energy": {"idle_baseline_s": 0, "client_only": client_only},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def test_throughput_at_concurrency_4_is_tokens_over_wall_time(tmp_path: Path) -> None:
    """8 requests, 4 at a time, each 0.3 s to the first of 10 tokens and 0.05 s per token
    after it: the server delivers 80 tokens in two waves of ~0.75 s. The old figure
    (÷ summed latencies, ~6 s) said a quarter of that."""
    with PacedServer(ttft_s=0.3, gap_s=0.05, tokens=10) as server:
        plan = paced_plan(tmp_path, server.base_url, concurrency=4, prompts=8)
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr + proc.stdout
    assert server.max_in_flight == 4 and len(server.served) == 8
    row = master_row(out, "paced")
    assert row["total_completion_tokens"] == "80" and row["token_count_source"] == "usage"
    wall = float(row["generation_seconds"])
    # The client's window holds the server's (first arrival -> last reply end), plus only
    # the loopback connects and reads around it.
    assert server.window_s() <= wall + 1e-3
    assert wall == pytest.approx(server.window_s(), abs=0.15)
    throughput = float(row["throughput_tokens_per_second"])
    assert throughput == pytest.approx(80 / wall, rel=1e-4)
    assert throughput == pytest.approx(80 / server.window_s(), rel=0.1)
    assert float(row["requests_per_second"]) == pytest.approx(8 / wall, rel=1e-4)
    latencies = [r["latency_s"] for r in db_rows(out, "SELECT latency_s FROM samples")]
    assert throughput > 3 * 80 / sum(latencies)  # what summed latencies would have said
    # One request decodes 9 tokens after its first in 9 gaps of 0.05 s: 20 tok/s.
    assert float(row["per_request_tokens_per_second"]) == pytest.approx(20.0, rel=0.15)
    # The server's fixed delays, seen through the distributions.
    assert float(row["p50_ttft_seconds"]) == pytest.approx(0.3, abs=0.06)
    assert float(row["p95_latency_seconds"]) == pytest.approx(0.75, abs=0.15)
    summary = json.loads((out / "runs" / row["run_id"] / "summary.json").read_text())["summary"]
    dists = summary["distributions"]
    assert dists["tpot_s"]["count"] == 8
    assert dists["tpot_s"]["p50"] == pytest.approx(0.05, abs=0.01)
    assert dists["itl_s"]["p50"] == pytest.approx(0.05, abs=0.01)
    assert dists["latency_s"]["p50"] <= dists["latency_s"]["p90"] <= dists["latency_s"]["p99"]


def test_at_concurrency_1_wall_time_and_summed_latency_agree(tmp_path: Path) -> None:
    with PacedServer(ttft_s=0.1, gap_s=0.03, tokens=10) as server:
        plan = paced_plan(tmp_path, server.base_url, concurrency=1, prompts=4, client_only=True)
        out = tmp_path / "out"
        proc = run_cli("run", str(plan), "-o", str(out), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr + proc.stdout
    assert server.max_in_flight == 1
    row = master_row(out, "paced")
    latencies = [r["latency_s"] for r in db_rows(out, "SELECT latency_s FROM samples")]
    old = 40 / sum(latencies)
    # The runner's own time between samples (storing, scoring, metering) is the gap.
    assert float(row["throughput_tokens_per_second"]) == pytest.approx(old, rel=0.1)
    assert float(row["throughput_tokens_per_second"]) <= old
    # energy.client_only: true asks for the client's own figure, labelled as such.
    assert row["energy_scope"] == "client only" and float(row["energy_wh"]) > 0
    assert "fleetbench's own process only" in row["energy_unmeasured_reason"]


def test_sweep_finds_the_knee_of_a_server_of_known_capacity(tmp_path: Path) -> None:
    """Two requests at once, 0.2 s each: the server completes at most 10 requests/s.
    Steps at 4 and 8 requests/s keep up; at 20 it saturates at ~10. Each step is a run
    (its own master CSV row); goodput under a 300 ms latency target falls past the knee."""
    with PacedServer(ttft_s=0.15, gap_s=0.025, tokens=3, capacity=2) as server:
        plan_path = paced_plan(tmp_path, server.base_url, concurrency=1, prompts=30)
        plan = yaml.safe_load(plan_path.read_text())
        plan["load"] = {"profile": "sweep", "rates_rps": [4, 8, 20], "duration_s": 1.2}
        plan["slo"] = {"latency_ms": 300}
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
        out = tmp_path / "out"
        proc = run_cli("run", str(plan_path), "-o", str(out), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr + proc.stdout
    assert server.reply_s() == pytest.approx(0.2) and server.max_in_flight == 2
    with open(out / "master_results.csv", newline="") as f:
        rows = {r["settings_label"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["20rps", "4rps", "8rps"]
    assert [rows[k]["total_prompts"] for k in ("4rps", "8rps", "20rps")] == ["5", "10", "24"]
    for label, rate in (("4rps", 4.0), ("8rps", 8.0)):
        row = rows[label]
        assert row["load_profile"] == "constant" and float(row["offered_rps"]) == rate
        assert float(row["completion_rps"]) == pytest.approx(rate, rel=0.1)
        assert float(row["goodput_share"]) == 1.0
    saturated = rows["20rps"]
    assert float(saturated["completion_rps"]) == pytest.approx(10.0, rel=0.15)
    assert float(saturated["goodput_share"]) < 0.5  # replies queue behind the capacity
    for row in rows.values():
        assert row["sweep_knee_rps"] == "8" and row["sweep_knee_reason"] == ""
        assert float(row["sweep_saturation_rps"]) == pytest.approx(10.0, rel=0.15)
        assert float(row["send_lag_p99_ms"]) < 50  # the client kept the schedule
        assert row["slo"] == "latency_ms=300"
    assert rows["4rps"]["sweep_step"] == "1/3" and rows["20rps"]["sweep_step"] == "3/3"
    stored = db_rows(out, "SELECT intended_send_at, actual_send_at FROM samples")
    assert len(stored) == 39
    assert all(s["intended_send_at"] is not None for s in stored)
    assert all(s["actual_send_at"] >= s["intended_send_at"] for s in stored)
    # The report plots the sweep as throughput-latency curves (p50 and p95).
    svg = (out / "report" / "plots" / "sweep-curves.svg").read_text()
    assert svg.startswith("<svg") and "load sweeps: throughput vs latency" in svg
    assert "sweep: paced / textgen: 3 steps 4-20 rps, knee 8 rps; at most 1" in proc.stdout
