"""The report's batch cards: the CO2 card's caption always agrees with its value —
the intensity that produced it (configured or a region's), or why there is none."""

from __future__ import annotations

from typing import Any

import pytest

from fleetbench.meters import carbon
from fleetbench.report.cards import batch_cards


def record(
    energy_wh: float | None, grid: carbon.GridIntensity | None, **extra: Any
) -> dict[str, Any]:
    co2 = None if energy_wh is None or grid is None else energy_wh / 1000 * grid.g_per_kwh
    return {
        "run_id": "r",
        "status": "completed",
        "energy_wh": energy_wh,
        "co2_emissions_g": co2,
        "carbon_region": grid.region if grid else None,
        "carbon_intensity_g_per_kwh": grid.g_per_kwh if grid else None,
        "carbon_intensity_source": grid.source if grid else None,
        "energy_method": "nvml",
        "cost_usd": None,
    } | extra


def test_a_configured_intensity_is_named_with_the_value() -> None:
    grid = carbon.resolve(None, 300.0)
    batch = batch_cards([record(2.0, grid), record(3.0, grid)])
    assert batch["co2_g"] == pytest.approx(1.5)
    assert batch["co2_note"] == "configured: 300 g/kWh"


def test_a_regions_intensity_is_named_with_its_source() -> None:
    fr, world = carbon.lookup("FR"), carbon.lookup("WORLD")
    batch = batch_cards([record(1.0, fr), record(1.0, world)])
    assert batch["co2_g"] == pytest.approx((fr.g_per_kwh + world.g_per_kwh) / 1000)
    notes = batch["co2_note"].split("; ")
    assert notes == sorted(f"{g.region}: {g.g_per_kwh:.4g} g/kWh ({g.source})" for g in (fr, world))
    assert "Ember" in batch["co2_note"]


def test_no_energy_means_no_value_and_says_why() -> None:
    grid = carbon.lookup("WORLD")
    batch = batch_cards([record(None, grid), record(1.0, grid)])
    assert batch["co2_g"] is None
    assert batch["co2_note"] == "no energy measured for 1 of 2 completed runs, so no CO2 total"
    one = batch_cards([record(None, grid)])
    assert one["co2_note"] == "no energy measured for the completed run, so no CO2 total"


def test_no_intensity_means_no_value_and_says_why() -> None:
    batch = batch_cards([record(1.0, None), record(1.0, carbon.lookup("DE"))])
    assert batch["co2_g"] is None
    assert batch["co2_note"] == "no carbon intensity recorded for 1 of 2 completed runs"


def test_no_completed_run_and_failed_runs_do_not_count() -> None:
    grid = carbon.lookup("WORLD")
    assert batch_cards([record(1.0, grid, status="failed")])["co2_note"] == "no completed run"
    batch = batch_cards([record(1.0, grid), record(None, None, status="failed")])
    assert batch["co2_g"] == pytest.approx(grid.g_per_kwh / 1000)
    assert batch["co2_note"].startswith("WORLD: ")
    assert (batch["runs"], batch["completed"], batch["failed"]) == (2, 1, 1)


def test_energy_and_cost_cards_say_which_runs_lack_the_figure() -> None:
    grid = carbon.lookup("WORLD")
    full = batch_cards([record(1.0, grid, cost_usd=0.5), record(2.0, grid, cost_usd=0.25)])
    assert (full["energy_wh"], full["energy_note"]) == (3.0, "nvml")
    assert (full["cost_usd"], full["cost_note"]) == (0.75, "priced runs")
    part = batch_cards([record(None, grid, cost_usd=0.5), record(2.0, grid)])
    assert (part["energy_wh"], part["energy_note"]) == (
        None, "no energy measured for 1 of 2 completed runs")  # fmt: skip
    assert (part["cost_usd"], part["cost_note"]) == (None, "no price for 1 of 2 completed runs")
