"""Per-run aggregates and the master CSV's formatting rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from procs import burn_cpu
from test_store import RUN, sample

from fleetbench.meters.derived import co2_grams
from fleetbench.meters.estimate import CpuTime, EstimateMeter
from fleetbench.report import MASTER_COLUMNS, summarize_run, write_master_csv
from fleetbench.store import COMPLETED, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    config = {"energy": {"carbon_intensity_g_per_kwh": 400.0, "watts_per_core": 10.0}}
    s.upsert_run(RUN | {"config": config}, "b1", planned_samples=4)
    return s


def test_summary_arithmetic(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    # One request after the other (concurrency 1): sent 100.0 -> 100.5, 100.5 -> 102.0.
    store.add_sample(
        sample(
            0,
            a,
            completion_tokens=10,
            latency_s=0.5,
            energy_wh=0.001,
            sent_at=100.0,
            received_at=100.5,
        )
    )
    store.add_sample(
        sample(
            1,
            a,
            completion_tokens=30,
            latency_s=1.5,
            energy_wh=0.003,
            sent_at=100.5,
            received_at=102.0,
        )
    )
    store.add_sample(
        sample(
            2,
            a,
            error="boom",
            completion_tokens=None,
            prompt_tokens=None,
            latency_s=None,
            ttft_s=None,
            energy_wh=0.0005,
            received_at=102.0,
        )
    )
    store.finish_attempt("r1", a, COMPLETED, None)
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert (s["total_prompts"], s["successful_prompts"], s["failed_prompts"]) == (4, 2, 2)
    assert (s["samples_stored"], s["samples_with_error"]) == (3, 1)
    assert (s["total_prompt_tokens"], s["total_completion_tokens"], s["total_tokens"]) == (
        6,
        40,
        46,
    )
    assert s["avg_latency_seconds"] == pytest.approx(1.0)
    # Wall time 100.0 -> 102.0 = the summed latencies here (concurrency 1).
    assert s["generation_seconds"] == pytest.approx(2.0)
    assert s["throughput_tokens_per_second"] == pytest.approx(40 / 2.0)
    assert s["requests_per_second"] == pytest.approx(2 / 2.0)
    assert s["energy_wh"] == pytest.approx(0.0045)
    assert s["gpu_energy_wh"] is None and s["cpu_energy_wh"] == pytest.approx(0.0045)
    assert s["co2_emissions_g"] == pytest.approx(0.0045 / 1000 * 400)
    # tokens per joule x joules = tokens
    assert s["tokens_per_joule"] * s["energy_wh"] * 3600 == pytest.approx(40)
    assert s["avg_energy_per_prompt_wh"] == pytest.approx(0.0045 / 3)
    assert s["energy_method"] == "estimate" and s["attempts"] == 1


def test_unmeasured_is_empty_never_zero(store: Store, tmp_path: Path) -> None:
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["energy_wh"] is None and s["tokens_per_joule"] is None
    assert s["energy_method"] == "none" and s["avg_latency_seconds"] is None
    path = write_master_csv(tmp_path, [s])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == MASTER_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["gpu_energy_wh"] == "" and row["co2_emissions_g"] == ""
    assert row["failed_prompts"] == "4"


def test_cpu_time_estimate_is_labelled_and_proportional() -> None:
    cpu = CpuTime()
    meter = EstimateMeter(cpu, watts=36.0, source="test")
    start_j, start_s = meter.read()["cpu"] or 0.0, cpu.total
    burn_cpu()
    cpu.refresh()
    cpu_seconds = cpu.total - start_s
    energy_wh = ((meter.read()["cpu"] or 0.0) - start_j) / 3600
    assert meter.devices[0].method == "estimate"
    assert cpu_seconds > 0
    assert energy_wh == pytest.approx(cpu_seconds * 36.0 / 3600)
    assert co2_grams(2.0, 500.0) == pytest.approx(1.0)
    assert co2_grams(None, 500.0) is None
    json.dumps(meter.devices[0].__dict__)


def test_reasoning_and_answer_tokens(store: Store) -> None:
    run = store.get_run("r1")
    assert run is not None
    empty = summarize_run(store, run)
    assert (empty["reasoning_tokens"], empty["answer_tokens"]) == (None, None)
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, completion_tokens=50, reasoning_tokens=40))
    store.add_sample(sample(1, a, completion_tokens=10, reasoning_tokens=0))
    store.add_sample(sample(2, a, completion_tokens=30, reasoning_tokens=5))
    store.add_sample(sample(3, a, error="boom", completion_tokens=None))  # no text: no split
    s = summarize_run(store, run)
    assert (s["reasoning_tokens"], s["answer_tokens"]) == (45, 45)
    assert s["total_completion_tokens"] == 90
    assert s["reasoning_energy_wh"] + s["answer_energy_wh"] == pytest.approx(s["energy_wh"])
    i = MASTER_COLUMNS.index("reasoning_tokens")
    assert MASTER_COLUMNS[i : i + 2] == ["reasoning_tokens", "answer_tokens"]


def test_cost_itl_retries_and_startup(store: Store) -> None:
    run = store.get_run("r1")
    assert run is not None
    empty = summarize_run(store, run)
    assert empty["cost_usd"] is None and empty["server_startup_seconds"] is None
    a = store.start_attempt("r1", "b1", {})
    store.update_attempt("r1", a, startup_s=1.25)
    store.add_sample(sample(0, a, cost_usd=0.002, itl_s=0.01, token_source="usage", retries=2))
    store.add_sample(sample(1, a, cost_usd=0.001, itl_s=0.03, token_source="tokenize"))
    store.add_sample(sample(2, a, error="boom", itl_s=9.0))  # failed: no ITL counted
    s = summarize_run(store, run)
    assert s["cost_usd"] == pytest.approx(0.003)  # the failed sample has no cost: adds none
    assert s["avg_itl_seconds"] == pytest.approx(0.02)
    assert s["retries"] == 2 and s["token_count_source"] == "tokenize+usage"
    assert s["server_startup_seconds"] == 1.25


def test_sample_cost_from_prices() -> None:
    from fleetbench.backends import GenerationResult
    from fleetbench.catalog.spec import ModelSpec
    from fleetbench.runner.worker import sample_cost

    result = GenerationResult(index=0, prompt_tokens=1000, completion_tokens=500)
    priced = ModelSpec(name="m", price_input_per_1m=3.0, price_output_per_1m=15.0)
    assert sample_cost(priced, result) == pytest.approx(1000 * 3 / 1e6 + 500 * 15 / 1e6)
    assert sample_cost(ModelSpec(name="free"), result) is None
    unknown = GenerationResult(index=0, prompt_tokens=None, completion_tokens=5)
    assert sample_cost(priced, unknown) is None  # never a partial figure
    out_only = ModelSpec(name="o", price_output_per_1m=2.0)
    assert sample_cost(out_only, unknown) == pytest.approx(5 * 2 / 1e6)


def test_cpu_time_estimate_counts_child_processes() -> None:
    """A server the worker started does the generating: its CPU time must count."""
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cpu = CpuTime()
        start = cpu.total
        time.sleep(1.0)  # this process idles; the child burns CPU
        cpu_seconds = cpu.refresh(relist=True) - start
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds > 0.3


def test_quality_means_and_unreached_samples(store: Store) -> None:
    from fleetbench.tasks import mean_scores

    assert mean_scores([{"a": 1, "b": True, "text": "x"}, None, {"a": 0.5}]) == {
        "a": 0.75,
        "b": 1.0,
    }
    run = store.get_run("r1")
    assert run is not None
    none = summarize_run(store, run)
    assert none["scores"] == {} and none["quality_score"] is None
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, scores_json=json.dumps({"correct": 1.0})))
    store.add_sample(sample(1, a, scores_json=json.dumps({"correct": 0.0})))
    s = summarize_run(store, run)  # 4 planned, 2 scored: the mean is over the scored
    assert s["scores"] == {"correct": 0.5}
    i = MASTER_COLUMNS.index("quality_metric")
    assert MASTER_COLUMNS[i : i + 2] == ["quality_metric", "quality_score"]


def test_reasoning_split_unknown_for_one_sample_is_empty(store: Store) -> None:
    """A partial reasoning total would pass for the run's: empty, like every token total."""
    run = store.get_run("r1")
    assert run is not None
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, completion_tokens=50, reasoning_tokens=40))
    store.add_sample(sample(1, a, completion_tokens=30))  # reasoning count unknown
    s = summarize_run(store, run)
    assert (s["reasoning_tokens"], s["answer_tokens"]) == (None, None)
    assert (s["reasoning_energy_wh"], s["answer_energy_wh"]) == (None, None)
    assert s["total_completion_tokens"] == 80


def csv_row(tmp_path: Path, summary: dict[str, object]) -> dict[str, str]:
    path = write_master_csv(tmp_path, [summary])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return dict(zip(rows[0], rows[1], strict=True))


TOKEN_FIGURES = (
    "total_tokens",
    "total_prompt_tokens",
    "total_completion_tokens",
    "throughput_tokens_per_second",
    "per_request_tokens_per_second",
    "tokens_per_joule",
    "reasoning_tokens",
    "answer_tokens",
    "reasoning_energy_wh",
    "answer_energy_wh",
    "cost_usd",
)


def test_unknown_token_counts_are_empty_never_zero(store: Store, tmp_path: Path) -> None:
    """A server streaming without usage, no tokenizer: NULL counts in, empty figures out."""
    a = store.start_attempt("r1", "b1", {})
    for i in range(3):
        store.add_sample(
            sample(
                i,
                a,
                prompt_tokens=None,
                completion_tokens=None,
                token_source=None,
                cost_usd=None,
                sent_at=10.0 + i,
                received_at=11.0 + i,
            )
        )
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["energy_wh"] is not None  # energy was measured; only the tokens are unknown
    for figure in TOKEN_FIGURES:
        assert s[figure] is None, figure
    assert s["requests_per_second"] == pytest.approx(3 / 3.0)  # needs no token count
    assert s["avg_energy_per_prompt_wh"] is not None  # per prompt, not per token
    assert s["token_count_source"] == "unknown"
    assert (
        "completion tokens unknown for 3 of 3 successful samples"
        in (s["token_count_unknown_reason"])
    )
    row = csv_row(tmp_path, s)
    for figure in TOKEN_FIGURES:
        assert row[figure] == "", figure
    assert row["token_count_source"] == "unknown"
    assert "3 of 3" in row["token_count_unknown_reason"]


def test_mixed_known_and_unknown_counts_are_empty_with_n_of_m(store: Store) -> None:
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, completion_tokens=7, token_source="usage", received_at=1.0))
    store.add_sample(sample(1, a, completion_tokens=None, token_source=None, received_at=2.0))
    store.add_sample(sample(2, a, completion_tokens=9, token_source="usage", received_at=3.0))
    # A failed request without counts returned nothing to count: it is no gap.
    store.add_sample(sample(3, a, error="HTTP 500", completion_tokens=None, prompt_tokens=None))
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["total_completion_tokens"] is None and s["throughput_tokens_per_second"] is None
    assert s["total_prompt_tokens"] == 9  # prompt counts are known for every success
    assert s["total_tokens"] is None
    assert s["token_count_source"] == "unknown+usage"
    assert s["token_count_unknown_reason"] == (
        "completion tokens unknown for 1 of 3 successful samples"
    )


def test_openai_runs_are_told_how_to_get_counts(tmp_path: Path) -> None:
    s = Store(tmp_path / "fleetbench.db")
    s.begin_batch("b1", "plan", "test", {}, {}, {})
    s.upsert_run(RUN | {"backend": "openai", "config": {}}, "b1", planned_samples=1)
    a = s.start_attempt("r1", "b1", {})
    s.add_sample(sample(0, a, completion_tokens=None, prompt_tokens=None))
    run = s.get_run("r1")
    assert run is not None
    reason = summarize_run(s, run)["token_count_unknown_reason"]
    assert "tokenizer_path" in reason and reason.startswith("prompt tokens unknown for 1 of 1")
    from fleetbench.cli.tables import summary_notes

    (note,) = summary_notes([summarize_run(s, run)])
    assert note.startswith("warning: ") and "tokenizer_path" in note


def test_throughput_is_tokens_over_wall_time_not_summed_latency(store: Store) -> None:
    """Four requests in flight together: each took 2 s, the server delivered all four in
    2.5 s. Summed latencies (8 s) would report a quarter of the real throughput."""
    a = store.start_attempt("r1", "b1", {})
    for i in range(4):
        sent = 100.0 + 0.1 * i
        store.add_sample(
            sample(
                i,
                a,
                completion_tokens=20,
                latency_s=2.0,
                ttft_s=0.5,
                sent_at=sent,
                received_at=sent + 2.0 + 0.2 * (i == 3),
            )
        )
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["generation_seconds"] == pytest.approx(2.5)  # 100.0 -> 102.5
    assert s["throughput_tokens_per_second"] == pytest.approx(80 / 2.5)
    assert s["requests_per_second"] == pytest.approx(4 / 2.5)
    # Per request: 19 tokens after the first in 1.5 s of decoding, each sample alike.
    assert s["per_request_tokens_per_second"] == pytest.approx(19 / 1.5)


def test_resumed_run_sums_the_attempts_windows(store: Store) -> None:
    """A kill at 103 and a resume an hour later: the gap is no generation time."""
    first = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, first, completion_tokens=10, sent_at=100.0, received_at=101.0))
    store.add_sample(sample(1, first, completion_tokens=10, sent_at=101.0, received_at=103.0))
    second = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(2, second, completion_tokens=10, sent_at=3700.0, received_at=3701.0))
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["generation_seconds"] == pytest.approx(3.0 + 1.0)
    assert s["throughput_tokens_per_second"] == pytest.approx(30 / 4.0)


def test_samples_without_times_have_no_throughput(store: Store) -> None:
    """Rows stored before send/receive times were recorded: no window, no rate (the
    old summed-latency figure would be wrong under concurrency)."""
    a = store.start_attempt("r1", "b1", {})
    store.add_sample(sample(0, a, completion_tokens=10, latency_s=1.0, ttft_s=0.2))
    run = store.get_run("r1")
    assert run is not None
    s = summarize_run(store, run)
    assert s["generation_seconds"] is None and s["throughput_tokens_per_second"] is None
    assert s["requests_per_second"] is None
    assert s["per_request_tokens_per_second"] == pytest.approx(9 / 0.8)  # needs no window
