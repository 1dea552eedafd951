"""Grid carbon intensity: a country code looked up in the shipped table, or an override.

The table (``_carbon_table``) holds Ember's 2024 figures per country (ISO 3166-1
alpha-2 codes) plus ``WORLD`` (the default) and ``EU``. A plan's explicit
``energy.carbon_intensity_g_per_kwh`` wins over the region's figure: use it for a
country that is missing or a finer grid region (a US state, a cloud region, a
green-power contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetbench.meters._carbon_table import INTENSITY, SOURCE, YEAR

DEFAULT_REGION = "WORLD"
OVERRIDE = "override"
_ALIASES = {"UK": "GB", "GLOBAL": "WORLD"}


@dataclass(frozen=True)
class GridIntensity:
    region: str  # the code looked up, or "" where only an override was given
    g_per_kwh: float
    source: str  # "Ember Yearly Electricity Data 2024", or "override"


def region_codes() -> list[str]:
    return sorted(INTENSITY)


def normalise_region(region: str) -> str:
    """Upper-cased table code; ``ValueError`` (naming the valid codes) if unknown."""
    code = region.strip().upper()
    code = _ALIASES.get(code, code)
    if code not in INTENSITY:
        raise ValueError(f"unknown region {region!r}; valid: {', '.join(region_codes())}")
    return code


def lookup(region: str) -> GridIntensity:
    code = normalise_region(region)
    return GridIntensity(code, INTENSITY[code][1], f"{SOURCE} {YEAR}")


def resolve(region: str | None, override_g_per_kwh: float | None) -> GridIntensity:
    """The intensity a run uses: the override if given, else the region's (default WORLD)."""
    if override_g_per_kwh is not None:
        return GridIntensity((region or "").strip().upper(), float(override_g_per_kwh), OVERRIDE)
    return lookup(region or DEFAULT_REGION)


def from_config(energy: dict[str, Any]) -> GridIntensity:
    """The intensity recorded in a stored run's ``energy`` settings (any fleetbench version).

    Runs stored before regions existed carry only a number: it is kept as an override.
    """
    try:
        return resolve(energy.get("carbon_region"), energy.get("carbon_intensity_g_per_kwh"))
    except ValueError:  # a code since removed from the table: fall back to the default
        return lookup(DEFAULT_REGION)
