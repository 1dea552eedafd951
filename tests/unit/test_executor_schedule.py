"""Longest expected run first; the dry run's simulated placement."""

from __future__ import annotations

from fleetbench.backends.base import GenerationSettings
from fleetbench.catalog import ModelSpec
from fleetbench.runner.executors.resources import Demand, ResourcePool
from fleetbench.runner.executors.schedule import Estimate, Work, estimate, longest_first, simulate
from fleetbench.runner.plan import EnergySettings, ExecutorSettings, RunSpec, TaskSpec


def work(name: str, params_b: float | None, samples: int) -> Work:
    spec = RunSpec(
        run_id=name,
        model=ModelSpec(name=name, backend="llamacpp", params_b=params_b),
        backend_options={},
        task=TaskSpec(name="textgen"),
        task_options={},
        settings_label="",
        generation=GenerationSettings(),
        energy=EnergySettings(),
    )
    return Work(spec, samples)


def test_unmeasured_runs_order_by_size_times_samples() -> None:
    jobs = [work("small", 0.1, 10), work("big", 7.0, 10), work("many", 0.5, 100)]
    est = estimate(jobs, None)
    assert all(e.seconds is None and e.basis == "size (relative)" for e in est.values())
    assert [w.spec.run_id for w in longest_first(jobs, est)] == ["big", "many", "small"]


def test_longest_first_ties_keep_plan_order() -> None:
    jobs = [work("a", 1, 5), work("b", 1, 5)]
    assert [w.spec.run_id for w in longest_first(jobs, estimate(jobs, None))] == ["a", "b"]


def test_simulation_places_longest_first_over_slots() -> None:
    jobs = [work("a", None, 1), work("b", None, 1), work("c", None, 1)]
    est = {"a": Estimate(30.0, "history", 30.0), "b": Estimate(20.0, "history", 20.0),
           "c": Estimate(10.0, "history", 10.0)}  # fmt: skip
    ordered = longest_first(jobs, est)
    pool = ResourcePool(ExecutorSettings(workers=2), [])
    placed = simulate(ordered, {w.spec.run_id: Demand("cpu") for w in jobs}, est, pool)
    assert placed["a"].start_s == 0 and placed["b"].start_s == 0
    assert placed["c"].start_s == 20.0 and placed["c"].slot == placed["b"].slot


def checkpoint(step: int, params_b: float) -> Work:
    w = work(f"train/checkpoint-{step}", params_b, 10)
    path = f"/runs/train/checkpoint-{step}"
    model = w.spec.model.model_copy(update={"source": path})
    spec = w.spec.model_copy(update={"model": model, "backend_options": {"model_path": path}})
    return Work(spec, 10)


def test_checkpoints_of_a_sweep_start_in_step_order() -> None:
    jobs = [checkpoint(100, 1.0), checkpoint(200, 1.3), checkpoint(300, 1.1), work("big", 9, 10)]
    order = [w.spec.run_id for w in longest_first(jobs, estimate(jobs, None))]
    assert order == [
        "big", "train/checkpoint-100", "train/checkpoint-200", "train/checkpoint-300"
    ]  # fmt: skip
