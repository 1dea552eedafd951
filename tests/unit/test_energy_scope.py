"""The energy boundary: every backend kind names its scope, and runs whose meters see
only fleetbench's own process report no energy unless asked for that client figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_store import RUN, sample

from fleetbench.backends import (
    CLIENT_ONLY,
    IN_PROCESS,
    MANAGED_SERVER,
    REMOTE_API,
    get_backend_class,
    server_scope,
)
from fleetbench.backends.base import BackendContext
from fleetbench.catalog.spec import ModelSpec
from fleetbench.report import MASTER_COLUMNS, summarize_run
from fleetbench.runner.worker import energy_scope
from fleetbench.store import Store

ENERGY_FIGURES = (
    "energy_wh",
    "cpu_energy_wh",
    "co2_emissions_g",
    "tokens_per_joule",
    "avg_energy_per_prompt_wh",
    "wh_per_1000_queries",
)


@pytest.mark.parametrize(
    "url,scope",
    [
        ("http://127.0.0.1:8080/v1", CLIENT_ONLY),
        ("http://127.5.6.7/v1", CLIENT_ONLY),
        ("http://localhost:11434/v1", CLIENT_ONLY),
        ("http://[::1]:8000/v1", CLIENT_ONLY),
        ("http://user:pw@127.0.0.1/v1", CLIENT_ONLY),
        ("http://192.168.1.20:8000/v1", REMOTE_API),  # another machine on the LAN
        ("https://api.openai.com/v1", REMOTE_API),
        ("http://gpu-box.internal/v1", REMOTE_API),
        (None, REMOTE_API),  # a hosted provider's default endpoint
        ("", REMOTE_API),
    ],
)
def test_server_scope_by_host(url: str | None, scope: str) -> None:
    assert server_scope(url) == scope


def context(tmp_path: Path) -> BackendContext:
    return BackendContext(model=ModelSpec(name="m"), run_dir=tmp_path)


def backend(name: str, options: dict[str, object], tmp_path: Path) -> object:
    cls = get_backend_class(name)
    return cls(cls.Options.model_validate(options), context(tmp_path))


def test_each_backend_kind_names_its_scope(tmp_path: Path) -> None:
    local = backend("openai", {"base_url": "http://127.0.0.1:9/v1"}, tmp_path)
    remote = backend("openai", {"base_url": "https://api.example.com/v1"}, tmp_path)
    assert energy_scope(local) == CLIENT_ONLY
    assert energy_scope(remote) == REMOTE_API
    hosted = backend("hosted", {"provider": "anthropic"}, tmp_path)
    assert energy_scope(hosted) == REMOTE_API
    stand_in = backend("hosted", {"provider": "anthropic", "api_base": "http://127.0.0.1:9"},
                       tmp_path)  # fmt: skip
    assert energy_scope(stand_in) == CLIENT_ONLY
    # In-process backends generate in the worker's process tree: no hook needed.
    for name in ("llamacpp", "transformers", "vllm"):
        cls = get_backend_class(name)
        assert not hasattr(cls, "energy_scope"), name
        assert energy_scope(cls.__new__(cls)) == IN_PROCESS
    # A plugin without the hook counts as in-process too.
    assert energy_scope(object()) == IN_PROCESS
    # (A managed server's scope, MANAGED_SERVER, is checked end to end in
    # tests/e2e/test_managed_cli.py: it needs the server started.)
    assert MANAGED_SERVER == "client + managed server"


def run_with_scope(tmp_path: Path, scope: str, client_only: bool = False) -> dict[str, object]:
    store = Store(tmp_path / f"{scope.replace(' ', '_')}-{client_only}.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    config = {"energy": {"client_only": client_only, "carbon_intensity_g_per_kwh": 400.0}}
    store.upsert_run(RUN | {"config": config}, "b1", planned_samples=2)
    a = store.start_attempt("r1", "b1", {})
    record = {"devices": [{"id": "cpu", "kind": "cpu", "method": "estimate"}],
              "unmeasured": {"gpu": "no NVIDIA GPU"}, "idle_w": {}, "scope": scope}  # fmt: skip
    store.update_attempt("r1", a, energy_json=json.dumps(record))
    for i in range(2):
        store.add_sample(sample(i, a, completion_tokens=20, cpu_energy_wh=0.001,
                                cpu_energy_gross_wh=0.001, energy_wh=0.001))  # fmt: skip
    run = store.get_run("r1")
    assert run is not None
    return summarize_run(store, run)


@pytest.mark.parametrize("scope", [IN_PROCESS, MANAGED_SERVER])
def test_metered_scopes_keep_their_energy(tmp_path: Path, scope: str) -> None:
    s = run_with_scope(tmp_path, scope)
    assert s["energy_scope"] == scope
    for figure in ENERGY_FIGURES:
        assert s[figure] is not None, figure
    assert s["energy_unmeasured_reason"] == "gpu: no NVIDIA GPU"


@pytest.mark.parametrize("scope", [CLIENT_ONLY, REMOTE_API])
def test_unmetered_scopes_leave_energy_empty_with_the_reason(tmp_path: Path, scope: str) -> None:
    s = run_with_scope(tmp_path, scope)
    assert s["energy_scope"] == scope
    for figure in ENERGY_FIGURES:
        assert s[figure] is None, figure
    reason = str(s["energy_unmeasured_reason"])
    assert reason.startswith(f"energy_scope {scope}: ") and reason.endswith("gpu: no NVIDIA GPU")
    if scope == CLIENT_ONLY:
        assert "energy.client_only: true" in reason and "options.server" in reason
    assert s["total_completion_tokens"] == 40 and s["cpu_seconds"] is not None


def test_client_only_asks_for_the_clients_figure_labelled(tmp_path: Path) -> None:
    s = run_with_scope(tmp_path, CLIENT_ONLY, client_only=True)
    assert s["energy_wh"] == pytest.approx(0.002)
    assert s["tokens_per_joule"] == pytest.approx(40 / (0.002 * 3600))
    assert s["co2_emissions_g"] == pytest.approx(0.002 / 1000 * 400)
    assert s["energy_scope"] == CLIENT_ONLY
    assert str(s["energy_unmeasured_reason"]).startswith(
        "energy_scope client only: fleetbench's own process only, not the server's"
    )


def test_runs_stored_before_scopes_keep_their_figures(tmp_path: Path) -> None:
    s = run_with_scope(tmp_path, "")
    assert s["energy_scope"] == "" and s["energy_wh"] == pytest.approx(0.002)
    assert "energy_scope" in MASTER_COLUMNS
