"""AI Energy Score style stars: equal bands over the energy range, per task and class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetbench.errors import ConfigError
from fleetbench.report.stars import (
    MIN_BATCH_GROUP,
    ReferenceRow,
    assign_stars,
    load_reference,
    rate_runs,
    stars_for,
)


def run(
    energy: float | None,
    task: str = "textgen",
    klass: str = "A",
    status: str = "completed",
    method: str = "estimate",
) -> dict[str, Any]:
    return {
        "task": task,
        "model_class": klass,
        "status": status,
        "wh_per_1000_queries": energy,
        "energy_method": method,
    }


def test_five_equal_bands_lowest_energy_five_stars() -> None:
    # Range 10..60: bands of width 10.
    assert [stars_for(v, 10, 60) for v in (10, 15, 25, 35, 45, 55, 60)] == [5, 5, 4, 3, 2, 1, 1]
    # A boundary belongs to the band with more energy (fewer stars), float noise aside.
    assert stars_for(20, 10, 60) == 4
    assert stars_for(0.48, 0.2, 0.9) == 3  # (0.48-0.2)/0.7*5 computes as 1.9999999999999998
    # Outside a reference's range: clamped.
    assert stars_for(1, 10, 60) == 5 and stars_for(100, 10, 60) == 1


def test_stars_on_a_known_set() -> None:
    runs = [run(v) for v in (2.0, 4.0, 6.0, 8.0, 10.0, 3.5)]
    assign_stars(runs)
    assert [r["energy_stars"] for r in runs] == [5, 4, 3, 2, 1, 5]
    assert {r["energy_stars_basis"] for r in runs} == {"batch"}
    assert {r["energy_stars_reason"] for r in runs} == {""}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_a_batch_group_of_fewer_than_five_runs_gets_no_stars(n: int) -> None:
    # Two runs 1 % apart would otherwise get 5 stars and 1 star.
    runs = [run(10.0 * (1 + 0.01 * i)) for i in range(n)]
    assign_stars(runs)
    assert [r["energy_stars"] for r in runs] == [None] * n
    assert [r["energy_stars_basis"] for r in runs] == [""] * n
    reason = runs[0]["energy_stars_reason"]
    assert reason.startswith(f"{n} completed run(s) of textgen class A measured by estimate")
    assert f"at least {MIN_BATCH_GROUP}" in reason and "energy.stars_reference" in reason
    assert {r["energy_stars_reason"] for r in runs} == {reason}


def test_only_runs_measured_by_the_same_method_are_compared() -> None:
    estimated = [run(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    measured = run(0.1, method="nvml-counter")  # far lower, but on another scale
    runs = [*estimated, measured]
    assign_stars(runs)
    assert [r["energy_stars"] for r in estimated] == [5, 4, 3, 2, 1]
    assert measured["energy_stars"] is None
    assert (
        "1 completed run(s) of textgen class A measured by nvml-counter"
        in (measured["energy_stars_reason"])
    )


def test_edge_cases() -> None:
    equal = [run(5.0) for _ in range(5)]
    assign_stars(equal)
    assert [r["energy_stars"] for r in equal] == [5] * 5  # all equal: 5 stars
    five = [run(float(v)) for v in (1, 2, 3, 4, 5)]
    others = [
        run(None),
        run(100.0, status="failed"),
        run(90.0, status="completed_with_errors"),
        {**run(30.0), "backend": "ensemble"},
    ]
    runs = [*five, *others]
    assign_stars(runs)
    # Not rated, and not part of the range: the completed five keep their own 1..5 scale.
    assert [r["energy_stars"] for r in runs] == [5, 4, 3, 2, 1, None, None, None, None]
    assert [r["energy_stars_basis"] for r in runs] == ["batch"] * 5 + [""] * 4
    assert [r["energy_stars_reason"] for r in others] == [
        "no energy figure",
        "status failed: only completed runs are rated",
        "status completed_with_errors: only completed runs are rated",
        "an ensemble: its energy is its members' sum",
    ]


def test_groups_by_task_and_by_class_for_text_generation() -> None:
    runs = [
        *(run(float(v), klass="A") for v in (1, 3, 5, 7, 9)),
        run(50.0, klass="B"),  # alone in class B: no stars, not 1
        *(run(float(v), task="wattbot", klass="A") for v in (7, 8)),
        *(run(float(v), task="wattbot", klass="B") for v in (9, 10, 11)),  # classes compete
    ]
    assign_stars(runs)
    assert [r["energy_stars"] for r in runs] == [5, 4, 3, 2, 1, None, 5, 4, 3, 2, 1]
    assert runs[5]["energy_stars_reason"].startswith("1 completed run(s) of textgen class B")


def test_reference_table(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    path.write_text(
        "task,class,wh_per_1000_queries\n"
        "textgen,A,10\n"
        "textgen,A,60\n"
        "TextGen,B,1000\n"
        "humaneval,,100\n"
        "\n"
    )
    ref = load_reference(path)
    assert ref[0] == ReferenceRow("textgen", "A", 10.0)
    assert len(ref) == 4
    runs = [
        run(12.0),  # band 1 of 10..60
        run(47.0),  # band 4
        run(80.0),  # above the reference: 1 star
        run(5.0, klass="B"),  # B's reference is one value: at or below it, 5 stars
        run(3.0, klass="C"),  # no C rows: within the batch, a group of one: no stars
        run(150.0, task="humaneval", klass="C", method="nvml-counter"),  # any method
    ]
    assign_stars(runs, ref)
    assert [r["energy_stars"] for r in runs] == [5, 2, 1, 5, None, 1]
    assert [r["energy_stars_basis"] for r in runs] == ["reference"] * 4 + ["", "reference"]
    assert runs[4]["energy_stars_reason"].startswith("1 completed run(s) of textgen class C")


@pytest.mark.parametrize(
    "text,message",
    [
        ("model,energy\nx,1\n", r"needs columns task, wh_per_1000_queries.*missing task"),
        ("task,wh_per_1000_queries\ntextgen,lots\n", r"ref.csv:2: expected a task and a number"),
        ("task,wh_per_1000_queries\ntextgen,-1\n", r"ref.csv:2: "),
        ("task,wh_per_1000_queries\n", r"has no rows"),
    ],
)
def test_bad_reference_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ref.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_reference(path)
    with pytest.raises(ConfigError, match="cannot read stars reference"):
        load_reference(tmp_path / "absent.csv")


def test_rate_runs_uses_the_latest_plans_reference(tmp_path: Path) -> None:
    import json

    path = tmp_path / "ref.csv"
    path.write_text("task,wh_per_1000_queries\ntextgen,0\ntextgen,100\n")
    rows = [
        {"updated_at": 1.0, "config_json": json.dumps({"energy": {}})},
        {"updated_at": 2.0, "config_json": json.dumps({"energy": {"stars_reference": str(path)}})},
    ]
    runs = [run(10.0), run(90.0)]
    rate_runs(runs, rows)
    assert [r["energy_stars"] for r in runs] == [5, 1]
    assert runs[0]["energy_stars_basis"] == "reference"
    # The latest settings name none: the batch's own range, even though an older run's
    # config still names one (settings_at, where stored, is what counts).
    newer = {"updated_at": 0.5, "settings_at": 3.0, "config_json": json.dumps({"energy": {}})}
    rate_runs(runs, [*rows, newer])
    assert [r["energy_stars_basis"] for r in runs] == ["", ""]  # two runs: too few
    rate_runs(runs, rows)
    assert runs[0]["energy_stars_basis"] == "reference"
    path.unlink()  # moved since: the batch's own range, and the basis says so
    many = [run(float(v)) for v in (1, 2, 3, 4, 5)]
    rate_runs(many, rows)
    assert [r["energy_stars_basis"] for r in many] == ["batch"] * 5


def test_summary_table_shows_stars_only_when_rated() -> None:
    from rich.console import Console

    from fleetbench.cli.tables import summary_table

    def summary(stars: int | None) -> dict[str, Any]:
        return {
            "model_name": "m",
            "backend": "llamacpp",
            "task": "textgen",
            "status": "completed",
            "successful_prompts": 1,
            "total_prompts": 1,
            "avg_latency_seconds": 0.1,
            "avg_ttft_seconds": 0.01,
            "throughput_tokens_per_second": 10.0,
            "energy_wh": 0.001,
            "energy_method": "estimate",
            "error_message": "",
            "energy_stars": stars,
        }

    console = Console(width=200, record=True)
    console.print(summary_table([summary(4), summary(None)]))
    text = console.export_text()
    assert "stars" in text and "★★★★☆" in text
    console = Console(width=200, record=True)
    console.print(summary_table([summary(None)]))
    assert "stars" not in console.export_text()


def test_stars_note_says_why_completed_runs_have_none() -> None:
    from fleetbench.cli.tables import stars_notes

    runs = [run(1.0), run(2.0), run(3.0, status="failed")]
    assign_stars(runs)
    (note,) = stars_notes(runs)  # one reason, said once
    assert note.startswith("no energy stars: 2 completed run(s) of textgen class A")
    five = [run(float(v)) for v in range(1, 6)]
    assign_stars(five)
    assert stars_notes(five) == []
