"""Load profiles: validation, arrival schedules, request caps, sweep expansion, knees."""

from __future__ import annotations

import statistics
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleetbench.backends.load import LoadProfile, SloTargets, arrival_offsets
from fleetbench.errors import PlanError
from fleetbench.report.load import mark_knees
from fleetbench.runner.plan import load_plan


def test_constant_arrivals_are_evenly_spaced() -> None:
    offsets = list(islice(arrival_offsets(LoadProfile(profile="constant", rate_rps=4)), 5))
    assert offsets == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_poisson_arrivals_are_seeded_with_the_rate_as_mean() -> None:
    load = LoadProfile(profile="poisson", rate_rps=20, seed=7)
    first = list(islice(arrival_offsets(load), 2001))
    assert first == list(islice(arrival_offsets(load), 2001))  # reproducible
    other = list(islice(arrival_offsets(load.model_copy(update={"seed": 8})), 2001))
    assert first != other
    gaps = [b - a for a, b in pairwise(first)]
    assert first[0] == 0.0 and min(gaps) > 0
    assert statistics.fmean(gaps) == pytest.approx(1 / 20, rel=0.1)
    assert statistics.pstdev(gaps) == pytest.approx(1 / 20, rel=0.15)  # exponential


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"profile": "constant"}, "profile constant needs rate_rps"),
        ({"profile": "sweep"}, "profile sweep needs rate_rps"),
        ({"rate_rps": 3}, "rate_rps needs profile constant, poisson or sweep"),
        ({"duration_s": 3}, "duration_s needs an open-loop profile"),
        ({"profile": "poisson", "rate_rps": 2, "concurrency": 4}, "concurrency is for profile"),
        ({"profile": "burst"}, "Input should be 'concurrent'"),
        ({"rate_rps": -1, "profile": "constant"}, "greater than 0"),
    ],
)
def test_bad_profiles_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LoadProfile.model_validate(fields)
    with pytest.raises(ValidationError, match="at least one"):
        SloTargets()


def test_request_caps() -> None:
    assert LoadProfile().request_cap() is None
    assert LoadProfile(max_requests=7).request_cap() == 7
    assert LoadProfile(profile="constant", rate_rps=4, duration_s=2.5).request_cap() == 10
    capped = LoadProfile(profile="poisson", rate_rps=4, duration_s=2.5, max_requests=3)
    assert capped.request_cap() == 3


def plan_text(load: str, extra: str = "") -> str:
    return f"""\
name: load
models:
  - name: served
    backend: openai
    options: {{base_url: "http://127.0.0.1:9/v1", model: m{extra}}}
  - name: local
    options: {{model_path: weights/a.gguf}}
tasks:
  - name: textgen
{load}
"""


def test_plan_load_applies_to_http_backends_and_sweeps_expand(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        plan_text(
            "load: {profile: sweep, rate_rps: 8, steps: 4, duration_s: 2}\nslo: {ttft_ms: 500}\n"
        )
    )
    runs = load_plan(path).runs
    served = [r for r in runs if r.model.name == "served"]
    assert [r.settings_label for r in served] == ["2rps", "4rps", "6rps", "8rps"]
    loads = [r.backend_options["load"] for r in served]
    assert [x["profile"] for x in loads] == ["constant"] * 4
    assert [x["sweep"] for x in loads] == [
        {"label": "", "step": k, "steps": 4} for k in (1, 2, 3, 4)
    ]
    assert [r.request_cap() for r in served] == [4, 8, 12, 16]
    assert served[0].backend_options["slo"]["ttft_ms"] == 500.0
    assert len({r.run_id for r in served}) == 4
    (local,) = [r for r in runs if r.model.name == "local"]  # llama.cpp: no load profile
    assert "load" not in local.backend_options and local.request_cap() is None


def test_an_entry_load_wins_and_no_load_keeps_the_run_id(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text("", ", load: {profile: poisson, rate_rps: 3, seed: 1}"))
    (served, _) = load_plan(path).runs
    assert served.backend_options["load"]["profile"] == "poisson"
    path.write_text(plan_text(""))
    plain = load_plan(path).runs[0]
    assert "load" not in plain.backend_options and "slo" not in plain.backend_options


def test_bad_load_values_name_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text("load:\n  profile: constant\n  rate_rps: 0\n"))
    with pytest.raises(PlanError, match=r"plan.yaml:12: load.rate_rps: .*greater than 0"):
        load_plan(path)
    path.write_text(plan_text("", ", load: {profile: constant}"))
    with pytest.raises(PlanError, match=r"plan.yaml:5: models\[0\].options.load: .*needs rate_rps"):
        load_plan(path)


def step(rate: float, done: float | None, label: str = "") -> dict[str, Any]:
    return {
        "model_name": "m",
        "task": "t",
        "backend": "openai",
        "offered_rps": rate,
        "completion_rps": done,
        "sweep": {"label": label, "step": 1, "steps": 4},
    }


def test_the_knee_is_the_last_step_that_keeps_up() -> None:
    steps = [step(16, 10.2), step(4, 4.0), step(8, 7.9), step(32, 10.1)]
    other = [step(4, 4.0, "b"), step(8, 8.0, "b")]
    mark_knees([*steps, *other, {"model_name": "m", "sweep": None}])
    assert {s["sweep_knee_rps"] for s in steps} == {8}
    assert {s["sweep_saturation_rps"] for s in steps} == {10.2}
    assert other[0]["sweep_knee_rps"] is None
    assert other[0]["sweep_knee_reason"].startswith("not saturated: every step up to 8 rps")
    lone = [step(4, 1.0), step(8, 1.0)]
    mark_knees(lone)
    assert lone[0]["sweep_knee_rps"] is None and "no step kept up" in lone[0]["sweep_knee_reason"]
