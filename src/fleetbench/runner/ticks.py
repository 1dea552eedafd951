"""Recurring rounds: ticks from a fixed start, one round of the plan per tick.

Tick ``i`` of ``--every D`` is due at ``start + i·D``; a cron schedule's ticks are the
cron expression's times after the start (``croniter``). Ticks are measured from the
stored start, never from when the last round ended, so a schedule does not drift with
run length and a restarted scheduler lands on the same grid. Every tick gets a row in
the store (``store/schedules.py``); what decides each one:

* due now (less than ``grace`` late): its round runs — one batch of the plan with
  ``rounds=[R]`` (``runner/batch.py``), resumable like any batch;
* came due while the previous round was still running: ``skipped``, never overlapped;
* came due while no scheduler ran: ``missed``; with ``catch_up="one"`` the latest of
  them runs at once instead (late), the others stay missed;
* a tick left ``running`` by a killed scheduler: its round is resumed first, with the
  same round number, so the count stays exact.

The schedule ends after ``max_rounds`` ticks that ran (done or failed) or at ``until``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fleetbench.errors import ConfigError
from fleetbench.store import Store
from fleetbench.store import schedules as db

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
MAX_GRACE_S = 90.0


def parse_duration(text: str, option: str) -> float:
    """``51m``, ``4d``, ``1h30m``, ``3s`` -> seconds; a bad one is a ConfigError."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(a + b for a, b in parts) != compact:
        raise ConfigError(
            f"{option} {text!r}: not a duration; valid: a number and a unit s, m, h, d or w, "
            "e.g. 51m, 4d, 1h30m"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{option} {text!r}: must be longer than 0 s")
    return seconds


def parse_timestamp(text: str, option: str) -> float:
    """ISO 8601 (``2026-12-06T12:00``, ``…Z``, ``…+01:00``); no zone means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: not a timestamp; valid: ISO 8601, e.g. 2026-12-06T12:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Cadence:
    """When ticks are due: every ``every_s`` seconds, or at a cron expression's times."""

    every_s: float | None = None
    cron: str | None = None
    # A cron schedule's due times so far, from one start: ticks are looked up in order.
    _cron_times: tuple[float, list[float]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.every_s is None) == (self.cron is None):
            raise ConfigError("give exactly one of --every and --cron")
        if self.cron is not None:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ConfigError(
                    f"--cron {self.cron!r}: not a cron expression; valid: five fields "
                    "'minute hour day month weekday', e.g. '*/15 * * * *'"
                )

    @property
    def label(self) -> str:
        return f"every {self.every_s:g}s" if self.every_s is not None else f"cron {self.cron}"

    def due(self, start: float, first: int, count: int) -> list[float]:
        """Due times of ticks ``first .. first+count-1``."""
        if self.every_s is not None:
            return [start + i * self.every_s for i in range(first, first + count)]
        from croniter import croniter

        if self._cron_times is None or self._cron_times[0] != start:
            self._cron_times = (start, [])
        times = self._cron_times[1]
        if len(times) < first + count:
            # Tick 0 is the first cron time at or after the start.
            since = times[-1] if times else start - 1e-6
            assert self.cron is not None
            it = croniter(self.cron, datetime.fromtimestamp(since, UTC))
            while len(times) < first + count:
                times.append(float(it.get_next(float)))
        return times[first : first + count]

    def due_at(self, start: float, tick: int) -> float:
        return self.due(start, tick, 1)[0]

    def grace(self, start: float, tick: int) -> float:
        """How late a tick may start and still count as on time: half the gap to the
        next tick, at most 90 s."""
        a, b = self.due(start, tick, 2)
        return min((b - a) / 2, MAX_GRACE_S)


@dataclass(frozen=True)
class Stop:
    max_rounds: int | None = None  # ticks that ran (done or failed)
    until: float | None = None  # no tick due after this

    def reached(self, ran: int, next_due: float) -> bool:
        if self.max_rounds is not None and ran >= self.max_rounds:
            return True
        return self.until is not None and next_due > self.until


# Runs one round; returns (ok, reason) — reason says which runs did not complete.
RoundRunner = Callable[[int], tuple[bool, str | None]]
Say = Callable[[str], None]


@dataclass
class Scheduler:
    store: Store
    schedule: db.ScheduleRow
    cadence: Cadence
    stop: Stop
    run_round: RoundRunner
    say: Say
    catch_up: str = "skip"  # skip | one
    once: bool = False  # run at most one due round, then return (platform schedulers)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    @property
    def sid(self) -> str:
        return self.schedule.schedule_id

    def ran(self) -> int:
        return sum(1 for t in db.ticks(self.store, self.sid) if t["status"] in db.RAN)

    def loop(self) -> None:
        """Resume a round a dead scheduler left, then serve ticks until the stop."""
        left = db.running_tick(self.store, self.sid)
        if left is not None:
            self._record_down(self._due(db.next_tick(self.store, self.sid), self.clock()))
            self.say(
                f"resuming round {left['round']} (tick {left['tick']}, due {iso(left['due_at'])})"
            )
            self._execute(int(left["tick"]), int(left["round"]), float(left["due_at"]))
            if self.once:
                return
        while True:
            tick = db.next_tick(self.store, self.sid)
            due = self.cadence.due_at(self.schedule.start_at, tick)
            if self.stop.reached(self.ran(), due):
                db.finish_schedule(self.store, self.sid)
                self.say(f"schedule finished: {self.ran()} round(s) ran")
                return
            now = self.clock()
            if due > now:
                if self.once:
                    self.say(f"no round due; next at {iso(due)}")
                    return
                self.sleep(min(due - now, 60.0))
                continue
            todo = self._pass_missed(tick, now)
            if todo is None:
                if self.once:
                    return
                continue
            round_no = db.claim_tick(self.store, self.sid, *todo)
            self._execute(todo[0], round_no, todo[1])
            if self.once:
                return

    def _due(self, tick: int, now: float) -> list[tuple[int, float]]:
        """Ticks from ``tick`` on due by ``now`` (and not after ``until``)."""
        due: list[tuple[int, float]] = []
        while True:
            at = self.cadence.due_at(self.schedule.start_at, tick + len(due))
            if at > now or (self.stop.until is not None and at > self.stop.until):
                return due
            due.append((tick + len(due), at))

    def _pass_missed(self, tick: int, now: float) -> tuple[int, float] | None:
        """Of the ticks due by ``now`` from ``tick`` on, record those no scheduler served
        as missed; the tick to run now (None: none is on time)."""
        due = self._due(tick, now)
        latest_tick, latest_at = due[-1]
        grace = self.cadence.grace(self.schedule.start_at, latest_tick)
        runnable = self.catch_up == "one" or self.once or now - latest_at <= grace
        self._record_down(due[:-1] if runnable else due)
        return (latest_tick, latest_at) if runnable else None

    def _record_down(self, missed: list[tuple[int, float]]) -> None:
        """Ticks that came due while no scheduler ran: missed."""
        if missed:
            db.record_ticks(
                self.store, self.sid, missed, db.TICK_MISSED, "no scheduler was running"
            )
            self.say(
                f"missed {len(missed)} tick(s) due {iso(missed[0][1])} .. {iso(missed[-1][1])}"
            )

    def _execute(self, tick: int, round_no: int, due: float) -> None:
        late = self.clock() - due
        self.say(f"round {round_no} (tick {tick}, due {iso(due)}, started {late:+.1f} s)")
        try:
            ok, reason = self.run_round(round_no)
        except KeyboardInterrupt:
            raise  # left `running`: the next scheduler resumes this same round
        except Exception as exc:  # one failed round never stops the schedule
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        db.finish_tick(self.store, self.sid, tick, db.TICK_DONE if ok else db.TICK_FAILED, reason)
        self.say(f"round {round_no} {'done' if ok else 'failed: ' + str(reason)}")
        # Ticks that came due while this round ran are skipped, never overlapped.
        skipped = self._due(db.next_tick(self.store, self.sid), self.clock())
        if skipped:
            db.record_ticks(
                self.store, self.sid, skipped, db.TICK_SKIPPED,
                f"round {round_no} (tick {tick}) was still running",
            )  # fmt: skip
            self.say(f"skipped {len(skipped)} tick(s): round {round_no} was still running")
