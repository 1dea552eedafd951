"""Load profiles of the network backends: how requests are sent, and latency targets.

* ``concurrent`` (the default): closed loop, ``concurrency`` requests in flight; each
  lane sends its next request when its reply is in (``engine.RequestEngine``'s lanes).
* ``constant`` / ``poisson``: open loop at ``rate_rps``. Request *k* is due at a fixed
  offset from the start (``k / rate`` or the sum of *k* seeded exponential gaps) and is
  sent then whether or not earlier replies are in, so a slow server cannot slow the
  arrivals down and hide its own queueing (no coordinated omission). Each sample
  records its intended and its actual send time.
* ``sweep``: one run per rate step (``runner.plan`` expands it), from light load up to
  ``rate_rps`` (``steps`` evenly spaced rates, or the explicit ``rates_rps``), each step
  an open-loop run of ``arrivals``; the report finds the knee (``report.load``).

A run sends as many requests as it has samples, capped by ``max_requests`` and, open
loop, by ``duration_s x rate_rps``: the cap becomes the run's planned samples, so every
planned request is sent and stored. ``warmup_requests`` replies (copies of the first
requests) come before the schedule starts and are not stored.

``SloTargets``: a request is *good* when it succeeded and meets every target given;
goodput is the share of the run's requests that are good and their rate per second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OPEN_LOOP = ("constant", "poisson")


class SweepStep(BaseModel):
    """Which step of which sweep a run is (set by the plan's expansion)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field("", description="the settings label the sweep was declared under")
    step: int = Field(ge=1)
    steps: int = Field(ge=1)


class LoadProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: Literal["concurrent", "constant", "poisson", "sweep"] = "concurrent"
    concurrency: int | None = Field(
        None, ge=1, le=512, description="concurrent: requests in flight (default: options')"
    )
    rate_rps: float | None = Field(
        None, gt=0, le=10000, description="constant/poisson: requests per second; sweep: top"
    )
    duration_s: float | None = Field(
        None, gt=0, description="open loop: send for this long (caps the requests)"
    )
    max_requests: int | None = Field(None, ge=1, description="cap on the requests sent")
    warmup_requests: int = Field(0, ge=0, le=1000, description="unrecorded requests first")
    seed: int = Field(0, description="poisson: seed of the arrival times")
    steps: int = Field(5, ge=2, le=50, description="sweep: rate steps up to rate_rps")
    rates_rps: list[float] | None = Field(
        None, min_length=2, description="sweep: explicit rate steps (instead of steps)"
    )
    arrivals: Literal["constant", "poisson"] = Field(
        "constant", description="sweep: the open-loop profile of each step"
    )
    sweep: SweepStep | None = Field(None, description="set by the plan for a sweep's steps")

    @model_validator(mode="after")
    def _consistent(self) -> LoadProfile:
        if self.profile in OPEN_LOOP and self.rate_rps is None:
            raise ValueError(f"profile {self.profile} needs rate_rps")
        if self.profile == "sweep":
            if self.rate_rps is None and self.rates_rps is None:
                raise ValueError("profile sweep needs rate_rps (the top rate) or rates_rps")
            if self.rates_rps is not None and any(r <= 0 for r in self.rates_rps):
                raise ValueError("rates_rps must all be > 0")
        if self.profile == "concurrent":
            if self.rate_rps is not None:
                raise ValueError("rate_rps needs profile constant, poisson or sweep")
            if self.duration_s is not None:
                raise ValueError(
                    "duration_s needs an open-loop profile (constant, poisson, sweep); "
                    "use max_requests with concurrent"
                )
        elif self.concurrency is not None:
            raise ValueError(f"concurrency is for profile concurrent, not {self.profile}")
        return self

    @property
    def open_loop(self) -> bool:
        return self.profile in OPEN_LOOP

    def request_cap(self) -> int | None:
        """The most requests this profile sends (None: as many as there are samples)."""
        caps = [self.max_requests] if self.max_requests is not None else []
        if self.open_loop and self.duration_s is not None and self.rate_rps is not None:
            caps.append(max(1, math.ceil(self.duration_s * self.rate_rps - 1e-9)))
        return min(caps) if caps else None

    def sweep_rates(self) -> list[float]:
        """A sweep's rates, lightest first."""
        if self.rates_rps is not None:
            return sorted(self.rates_rps)
        assert self.rate_rps is not None
        return [self.rate_rps * k / self.steps for k in range(1, self.steps + 1)]

    def steps_profiles(self) -> list[LoadProfile]:
        """One open-loop profile per step of a sweep."""
        rates = self.sweep_rates()
        return [
            self.model_copy(
                update={
                    "profile": self.arrivals,
                    "rate_rps": rate,
                    "rates_rps": None,
                    "sweep": SweepStep(step=k, steps=len(rates)),
                }
            )
            for k, rate in enumerate(rates, start=1)
        ]


def arrival_offsets(load: LoadProfile) -> Iterator[float]:
    """Seconds from the schedule's start at which each request is due: the first at 0,
    then every 1/rate (constant) or after seeded exponential gaps of mean 1/rate."""
    if load.rate_rps is None or not load.open_loop:
        raise ValueError("arrival offsets need an open-loop profile with rate_rps")
    rate = load.rate_rps
    rng = random.Random(load.seed)
    k, t = 0, 0.0
    while True:
        yield k / rate if load.profile == "constant" else t
        k += 1
        t += rng.expovariate(rate)


class SloTargets(BaseModel):
    """Latency targets a good request meets (every one given); milliseconds."""

    model_config = ConfigDict(extra="forbid")

    ttft_ms: float | None = Field(None, gt=0, description="time to first token")
    itl_ms: float | None = Field(None, gt=0, description="mean inter-token latency")
    latency_ms: float | None = Field(None, gt=0, description="whole request")

    @model_validator(mode="after")
    def _some(self) -> SloTargets:
        if self.ttft_ms is None and self.itl_ms is None and self.latency_ms is None:
            raise ValueError("give at least one of ttft_ms, itl_ms, latency_ms")
        return self
