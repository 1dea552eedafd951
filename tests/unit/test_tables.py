"""The terminal's results table stays readable (and quick) for a fleet of 1,000 runs."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from fleetbench.cli.tables import TABLE_MAX_RUNS, shown_runs, summary_table


def _summary(i: int, status: str = "completed") -> dict[str, Any]:
    return {
        "model_name": f"model{i:04d}", "backend": "openai", "task": "custom", "status": status,
        "successful_prompts": 10, "total_prompts": 10, "throughput_tokens_per_second": 1.0,
        "energy_wh": 0.1, "energy_method": "estimate", "error_message": "",
    }  # fmt: skip


def test_small_fleets_show_every_run_in_order() -> None:
    assert shown_runs([_summary(i) for i in range(5)]) == [0, 1, 2, 3, 4]


def test_large_fleets_show_unfinished_runs_first_then_the_rest() -> None:
    summaries = [_summary(i, "failed" if i in (7, 900) else "completed") for i in range(1000)]
    shown = shown_runs(summaries)
    assert len(shown) == TABLE_MAX_RUNS and shown == sorted(shown)
    assert {7, 900} <= set(shown)
    console = Console(width=400, record=True)
    console.print(summary_table(summaries))
    text = console.export_text()
    assert "model0900" in text and "model0999" not in text
    assert f"{TABLE_MAX_RUNS} of 1000 runs shown" in text
