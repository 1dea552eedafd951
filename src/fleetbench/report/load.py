"""A run's load figures (``backends.load``): the schedule kept, goodput, a sweep's knee.

* ``offered_rps``: the open-loop rate asked for; ``completion_rps``: successful replies
  per second between the first and the last reply, (n - 1) ÷ (last - first received).
  A server that keeps up completes at the offered rate; past its capacity replies come
  at the capacity, however fast requests arrive.
* ``send_lag_p50_ms`` / ``send_lag_p99_ms``: actual minus intended send time over the
  samples that had a due time. Large lags mean the *client* could not keep the schedule
  (a busy host), and the run did not offer the load it names.
* Goodput (with ``slo`` targets): a request is good when it succeeded and meets every
  target; a figure it lacks (no TTFT without streaming) does not meet it. ``goodput_share``
  = good ÷ all requests of the run (failures count against it), ``goodput_rps`` = good ÷
  the generation wall time (``report.timing``).
* A sweep's knee (``mark_knees``, across the steps' summaries): the highest offered rate
  before the first step that does not keep up (``completion_rps`` below
  ``KEEP_UP`` x offered). Empty with ``sweep_knee_reason`` when no step kept up or every
  step did (not saturated). Every step's row carries its sweep's knee and saturation
  throughput (the highest ``completion_rps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetbench.report.timing import OkColumns, percentile

KEEP_UP = 0.9  # a step keeps up when it completes at least this share of its rate
LOAD_COLUMNS = [
    "load_profile",
    "offered_rps",
    "completion_rps",
    "send_lag_p50_ms",
    "send_lag_p99_ms",
    "slo",
    "goodput_share",
    "goodput_rps",
    "sweep_step",
    "sweep_knee_rps",
    "sweep_saturation_rps",
    "sweep_knee_reason",
]
_TARGETS = (("ttft_ms", "ttft_s"), ("itl_ms", "itl_s"), ("latency_ms", "latency_s"))


@dataclass(frozen=True)
class LoadInputs:
    """What the load figures read from a run's samples: how many are stored, the
    successful ones (latency, TTFT, ITL: the SLO targets), the send lags (ms) of those
    with a due time, and how many successful replies have a reply time, the first and
    the last of them (``store.aggregates``)."""

    samples: int
    ok: OkColumns
    lags_ms: list[float]
    ok_replies: int
    first_reply: float | None
    last_reply: float | None


def load_figures(
    config: dict[str, Any], inputs: LoadInputs, wall_s: float | None
) -> dict[str, Any]:
    """The run's load columns (the sweep's knee is filled in by ``mark_knees``)."""
    options = config.get("backend_options") or {}
    load = options.get("load") or {}
    slo = options.get("slo") or {}
    profile = load.get("profile") or ("concurrent" if "concurrency" in options else "")
    lags = inputs.lags_ms
    sweep = load.get("sweep")
    out: dict[str, Any] = {
        "load_profile": profile,
        "offered_rps": load.get("rate_rps") if profile in ("constant", "poisson") else None,
        "completion_rps": _completion_rps(inputs),
        "send_lag_p50_ms": percentile(lags, 50),
        "send_lag_p99_ms": percentile(lags, 99),
        "slo": ";".join(f"{k}={slo[k]:g}" for k, _ in _TARGETS if slo.get(k) is not None),
        "goodput_share": None,
        "goodput_rps": None,
        "sweep_step": f"{sweep['step']}/{sweep['steps']}" if sweep else "",
        "sweep_knee_rps": None,
        "sweep_saturation_rps": None,
        "sweep_knee_reason": "",
        "sweep": sweep,
    }
    if slo and inputs.samples:
        ok = inputs.ok
        good = sum(1 for s in zip(ok.ttft, ok.itl, ok.latency, strict=True) if _meets(s, slo))
        out["goodput_share"] = good / inputs.samples
        out["goodput_rps"] = good / wall_s if wall_s else None
    return out


def _meets(sample: tuple[float | None, ...], slo: dict[str, Any]) -> bool:
    """Whether a sample's (TTFT, ITL, latency) meet every target of ``slo``."""
    for (target, _), value in zip(_TARGETS, sample, strict=True):
        limit = slo.get(target)
        if limit is None:
            continue
        if value is None or 1000.0 * value > limit:
            return False
    return True


def _completion_rps(inputs: LoadInputs) -> float | None:
    first, last = inputs.first_reply, inputs.last_reply
    if inputs.ok_replies < 2 or first is None or last is None or last <= first:
        return None
    return (inputs.ok_replies - 1) / (float(last) - float(first))


def mark_knees(summaries: list[dict[str, Any]]) -> None:
    """Fill every sweep step's knee, saturation and reason from its sweep's steps (the
    runs of one model, task and sweep label)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for s in summaries:
        sweep = s.get("sweep")
        if sweep and s.get("offered_rps"):
            key = (s["model_name"], s["task"], s["backend"], str(sweep.get("label", "")))
            groups.setdefault(key, []).append(s)
    for steps in groups.values():
        steps.sort(key=lambda s: float(s["offered_rps"]))
        knee, reason = _knee(steps)
        rates = [s["completion_rps"] for s in steps if s["completion_rps"] is not None]
        for s in steps:
            s["sweep_knee_rps"] = knee
            s["sweep_saturation_rps"] = max(rates) if rates else None
            s["sweep_knee_reason"] = reason


def _knee(steps: list[dict[str, Any]]) -> tuple[float | None, str]:
    knee: float | None = None
    for s in steps:
        offered, done = float(s["offered_rps"]), s["completion_rps"]
        if done is None:
            return None, f"step at {offered:g} rps has fewer than 2 replies"
        if done < KEEP_UP * offered:
            if knee is None:
                return None, f"no step kept up; the lightest ({offered:g} rps) completed {done:.3g}"
            return knee, ""
        knee = offered
    return None, f"not saturated: every step up to {knee:g} rps kept up"
