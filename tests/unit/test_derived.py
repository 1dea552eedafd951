"""Derived energy figures, grid carbon intensity by region, and model size on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetbench.meters import carbon
from fleetbench.meters.derived import (
    DerivedInputs,
    co2_grams,
    derive,
    joules,
    split_energy,
    tokens_per_joule,
    wh_per_1000_queries,
    wh_per_prompt,
)
from fleetbench.meters.disk import disk_bytes, model_disk


def inputs(**overrides: object) -> DerivedInputs:
    base: dict[str, object] = {
        "net_energy_wh": 0.5,
        "total_energy_wh": 0.8,
        "prompts": 10,
        "completion_tokens": 900,
        "reasoning_tokens": 600,
        "answer_tokens": 300,
        "carbon_g_per_kwh": 400.0,
    }
    return DerivedInputs(**(base | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("tokens,wh", [(900, 0.5), (1, 1e-9), (123_456, 42.0)])
def test_tokens_per_joule_times_joules_is_tokens(tokens: int, wh: float) -> None:
    tpj = tokens_per_joule(tokens, wh)
    j = joules(wh)
    assert tpj is not None and j is not None
    assert tpj * j == pytest.approx(tokens)


def test_derived_figures_are_consistent() -> None:
    d = derive(inputs())
    assert d["avg_energy_per_prompt_wh"] == pytest.approx(0.05)
    assert d["wh_per_1000_queries"] == pytest.approx(50.0)
    assert d["tokens_per_joule"] == pytest.approx(900 / (0.5 * 3600))
    # CO2 counts all the energy drawn: 0.8 Wh = 0.0008 kWh x 400 g/kWh.
    assert d["co2_emissions_g"] == pytest.approx(0.32)
    # Reasoning / answer split in proportion to tokens; all counts known: sums to net.
    assert d["reasoning_energy_wh"] == pytest.approx(0.5 * 600 / 900)
    assert d["answer_energy_wh"] == pytest.approx(0.5 * 300 / 900)
    assert d["reasoning_energy_wh"] + d["answer_energy_wh"] == pytest.approx(0.5)


def test_co2_from_a_known_intensity() -> None:
    assert co2_grams(1000.0, 56.0) == pytest.approx(56.0)  # 1 kWh in a 56 g/kWh grid
    assert co2_grams(2.0, 500.0) == pytest.approx(1.0)
    assert co2_grams(None, 500.0) is None
    assert co2_grams(0.0, 500.0) == 0.0  # measured zero stays a measured zero


def test_unmeasured_energy_gives_none_never_zero() -> None:
    d = derive(inputs(net_energy_wh=None, total_energy_wh=None))
    assert all(v is None for v in d.values()), d
    # Only a total (e.g. CPU estimate without a GPU figure) still gives CO2 and the rest.
    d = derive(inputs(net_energy_wh=None, total_energy_wh=0.8))
    assert d["co2_emissions_g"] == pytest.approx(0.32) and d["tokens_per_joule"] is None
    # Only a net figure: CO2 falls back to it.
    assert derive(inputs(total_energy_wh=None))["co2_emissions_g"] == pytest.approx(0.2)


def test_edge_cases() -> None:
    assert tokens_per_joule(10, 0.0) is None  # no division by zero
    assert wh_per_prompt(1.0, 0) is None and wh_per_1000_queries(None, 5) is None
    assert split_energy(1.0, 0, 0, 0) == (None, None)
    assert split_energy(1.0, 10, None, None) == (None, None)  # split unknown
    # Some samples' split unknown: the known tokens get their share of the energy only.
    r, a = split_energy(1.0, 100, 30, 20)
    assert (r, a) == (pytest.approx(0.3), pytest.approx(0.2))


def test_region_lookup() -> None:
    assert carbon.lookup("FR").g_per_kwh == pytest.approx(44.18)
    assert carbon.lookup("fr").region == "FR"
    assert carbon.lookup("UK").region == "GB"
    world = carbon.resolve(None, None)
    assert world.region == "WORLD" and world.g_per_kwh == pytest.approx(473.05)
    assert world.source == "Ember Yearly Electricity Data 2024"
    assert len(carbon.region_codes()) > 80
    # An explicit number wins over the region and is labelled as such.
    override = carbon.resolve("FR", 12.5)
    assert (override.region, override.g_per_kwh, override.source) == ("FR", 12.5, "override")


def test_unknown_region_names_valid_codes() -> None:
    with pytest.raises(ValueError, match=r"unknown region 'XX'; valid: .*FR, .*WORLD"):
        carbon.normalise_region("XX")


def test_stored_config_of_any_version() -> None:
    old = carbon.from_config({"carbon_intensity_g_per_kwh": 475.0, "watts_per_core": 10})
    assert (old.g_per_kwh, old.source) == (475.0, "override")
    new = carbon.from_config({"carbon_region": "DE", "carbon_intensity_g_per_kwh": None})
    assert new.region == "DE" and new.g_per_kwh == pytest.approx(344.14)
    assert carbon.from_config({}).region == "WORLD"


def test_plan_carbon_settings() -> None:
    from pydantic import ValidationError

    from fleetbench.runner.plan import EnergySettings

    assert EnergySettings().carbon_region == "WORLD"
    assert EnergySettings().carbon_intensity_g_per_kwh is None
    assert EnergySettings(carbon_region="se").carbon_region == "SE"
    with pytest.raises(ValidationError, match="unknown region 'Mars'"):
        EnergySettings(carbon_region="Mars")


def test_disk_size_of_a_file_and_a_folder(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"x" * 1234)
    assert disk_bytes(weights) == 1234
    folder = tmp_path / "hf"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x" * 1000)
    (folder / "sub" / "config.json").write_bytes(b"{}")
    (folder / "link.bin").symlink_to(weights)  # a hub cache snapshot links to blobs
    assert disk_bytes(folder) == 1000 + 2 + 1234
    assert disk_bytes(tmp_path / "absent") is None


def test_model_disk_from_load_info(tmp_path: Path) -> None:
    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"x" * 10)

    def info(**fields: object) -> str:
        return json.dumps({"load_time_s": 0.1, **fields})

    # The backend's own figure wins; the newest attempt counts.
    assert model_disk([info(model_size_bytes=5), info(model_size_bytes=7)]) == (7, "")
    assert model_disk([info(model_path=str(weights))]) == (10, "")
    size, why = model_disk([info(model_path="anthropic:claude-x")])
    assert size is None and "remote" in why
    size, why = model_disk([info(details={"base_url": "http://h"})])
    assert size is None and "no model file" in why
    size, why = model_disk([info(model_path=str(tmp_path / "gone.gguf"))])
    assert size is None and "not found" in why
    size, why = model_disk([None])
    assert size is None and "not loaded" in why
