"""Per-run figures derived from energy, token counts and the grid's carbon intensity.

Pure arithmetic, no I/O. The rules every function follows:

* An unmeasured input gives ``None`` (empty in the CSV), never 0: no energy means no
  Wh per prompt, no tokens per joule, no CO2; unknown token counts (``None``) mean no
  tokens per joule and no reasoning/answer split.
* Per-query and per-token figures use the run's **net** energy: net GPU energy
  (idle-subtracted) where the run has it, else the run's energy figure (on machines
  without an energy counter, the CPU-time estimate). This is AI Energy Score's
  convention: energy attributable to the model's work.
* CO2 counts the run's energy on every metered device (its ``energy_wh``: GPU and
  CPU, net of idle), falling back to the net GPU figure where that is all there is.
  Idle power is drawn whether or not a model runs, so it is left out, as in the
  per-query figures.

Reasoning vs answer energy is split **per run, in proportion to tokens**: the run's
net energy per completion token (net Wh ÷ all completion tokens) times the reasoning
tokens, and likewise for the answer tokens. ``reasoning_tokens``/``answer_tokens``
count the successful samples and are empty unless every one of them has its counts,
so the two parts add up to the run's net energy unless failed samples reported
tokens too.
The split assumes every generated token costs the same, with the prompt's processing
(prefill) spread evenly over the generated tokens; long reasoning makes later tokens
slightly dearer (longer context), which this ignores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JOULES_PER_WH = 3600.0
QUERIES_PER_SCORE_UNIT = 1000  # AI Energy Score reports Wh per 1,000 queries


@dataclass(frozen=True)
class DerivedInputs:
    """What the derived figures are computed from; ``None`` = not measured."""

    net_energy_wh: float | None
    total_energy_wh: float | None
    prompts: int  # queries that were run (samples stored, failed ones included)
    completion_tokens: int | None  # None: some successful sample's count is unknown
    reasoning_tokens: int | None
    answer_tokens: int | None
    carbon_g_per_kwh: float


def joules(energy_wh: float | None) -> float | None:
    return None if energy_wh is None else energy_wh * JOULES_PER_WH


def wh_per_prompt(energy_wh: float | None, prompts: int) -> float | None:
    if energy_wh is None or prompts <= 0:
        return None
    return energy_wh / prompts


def wh_per_1000_queries(energy_wh: float | None, prompts: int) -> float | None:
    """AI Energy Score's unit: energy of 1,000 queries at this run's mean per query."""
    per = wh_per_prompt(energy_wh, prompts)
    return None if per is None else per * QUERIES_PER_SCORE_UNIT


def tokens_per_joule(tokens: int | None, energy_wh: float | None) -> float | None:
    """Generated tokens per joule; ``None`` without tokens, without or with zero energy."""
    j = joules(energy_wh)
    if tokens is None or not j or j <= 0:
        return None
    return tokens / j


def co2_grams(energy_wh: float | None, g_per_kwh: float) -> float | None:
    return None if energy_wh is None else energy_wh / 1000.0 * g_per_kwh


def split_energy(
    energy_wh: float | None,
    completion_tokens: int | None,
    reasoning_tokens: int | None,
    answer_tokens: int | None,
) -> tuple[float | None, float | None]:
    """(reasoning Wh, answer Wh) in proportion to tokens (see the module docstring)."""
    if energy_wh is None or reasoning_tokens is None or answer_tokens is None:
        return None, None
    if completion_tokens is None or completion_tokens <= 0:
        return None, None
    per_token = energy_wh / completion_tokens
    return reasoning_tokens * per_token, answer_tokens * per_token


def derive(inputs: DerivedInputs) -> dict[str, Any]:
    """The derived columns of one run's summary."""
    net = inputs.net_energy_wh
    total = inputs.total_energy_wh if inputs.total_energy_wh is not None else net
    reasoning_wh, answer_wh = split_energy(
        net, inputs.completion_tokens, inputs.reasoning_tokens, inputs.answer_tokens
    )
    return {
        "co2_emissions_g": co2_grams(total, inputs.carbon_g_per_kwh),
        "tokens_per_joule": tokens_per_joule(inputs.completion_tokens, net),
        "avg_energy_per_prompt_wh": wh_per_prompt(net, inputs.prompts),
        "wh_per_1000_queries": wh_per_1000_queries(net, inputs.prompts),
        "reasoning_energy_wh": reasoning_wh,
        "answer_energy_wh": answer_wh,
    }
