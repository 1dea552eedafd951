"""The batch summary cards at the top of the report page: runs, duration, and the
energy, CO2 and cost totals, each with a caption that says where its value came from
or why there is none.

A total is shown only when every completed run has the figure (a partial sum would
read low). The CO2 caption names the grid intensity that produced the value (a
configured ``carbon_intensity_g_per_kwh`` override, or a region's figure from the
shipped table); an empty value names its reason (no completed run, energy not
measured, no intensity recorded), so caption and value never disagree.
"""

from __future__ import annotations

from typing import Any

from fleetbench.meters.carbon import OVERRIDE

COMPLETED = "completed"


def batch_cards(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures and captions of the batch cards (``index.html.j2``'s ``batch``)."""
    completed = [r for r in records if r.get("status") == COMPLETED]

    def total(column: str) -> float | None:
        values = [r.get(column) for r in completed]
        if not values or any(v is None for v in values):
            return None
        return float(sum(v for v in values if v is not None))

    co2, co2_note = co2_card(completed)
    energy, cost = total("energy_wh"), total("cost_usd")
    methods = ", ".join(sorted({str(r.get("energy_method") or "none") for r in records}))
    return {
        "runs": len(records),
        "completed": len(completed),
        "failed": len(records) - len(completed),
        "duration_s": sum(float(r.get("total_duration_seconds") or 0) for r in records),
        "energy_wh": energy,
        "energy_note": methods if energy is not None else _missing(completed, "energy_wh"),
        "co2_g": co2,
        "co2_note": co2_note,
        "cost_usd": cost,
        "cost_note": "priced runs" if cost is not None else _missing(completed, "cost_usd"),
        "methods": methods,
    }


def _missing(completed: list[dict[str, Any]], column: str) -> str:
    if not completed:
        return "no completed run"
    k = sum(r.get(column) is None for r in completed)
    what = "no energy measured" if column == "energy_wh" else "no price"
    return f"{what} for {_of(k, len(completed))}"


def co2_card(completed: list[dict[str, Any]]) -> tuple[float | None, str]:
    """(total grams or None, caption): the caption names the intensities used when
    there is a total, else the reason there is none."""
    if not completed:
        return None, "no completed run"
    n = len(completed)
    no_energy = [r for r in completed if r.get("energy_wh") is None]
    if no_energy:
        return None, f"no energy measured for {_of(len(no_energy), n)}, so no CO2 total"
    no_grid = [r for r in completed if r.get("carbon_intensity_g_per_kwh") is None]
    if no_grid:
        return None, f"no carbon intensity recorded for {_of(len(no_grid), n)}"
    values = [r.get("co2_emissions_g") for r in completed]
    if any(v is None for v in values):  # energy and intensity known: not expected
        missing = sum(v is None for v in values)
        return None, f"no CO2 figure for {_of(missing, n)}"
    grids = sorted({_grid(r) for r in completed})
    return float(sum(v for v in values if v is not None)), "; ".join(grids)


def _grid(record: dict[str, Any]) -> str:
    """``WORLD: 473 g/kWh (Ember Yearly Electricity Data 2024)`` or
    ``configured: 300 g/kWh`` (``carbon_intensity_g_per_kwh`` in the plan)."""
    intensity = f"{float(record['carbon_intensity_g_per_kwh']):.4g} g/kWh"
    source = str(record.get("carbon_intensity_source") or "")
    region = str(record.get("carbon_region") or "")
    if source == OVERRIDE:
        return f"configured: {intensity}" + (f" ({region})" if region else "")
    where = region or "region unknown"
    return f"{where}: {intensity}" + (f" ({source})" if source else "")


def _of(k: int, n: int) -> str:
    return f"{k} of {n} completed runs" if n > 1 else "the completed run"
