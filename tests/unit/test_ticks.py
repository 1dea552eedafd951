"""The tick logic on a fake clock: the grid, missed and skipped ticks, catch-up, --once,
resuming a round a dead scheduler left, cron cadences."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbench.errors import ConfigError
from fleetbench.runner.ticks import Cadence, Scheduler, Stop, parse_duration, parse_timestamp
from fleetbench.store import Store
from fleetbench.store import schedules as db

START = 1_800_000_000.0  # a whole minute


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scheduler(tmp_path: Path, clock: Clock, durations: list[float], **kw: object) -> Scheduler:
    store = Store(tmp_path / "fleetbench.db")
    row, _ = db.open_schedule(store, "s1", "plan.yaml", "every 10s", {}, START)
    rounds: list[int] = []

    def run_round(r: int) -> tuple[bool, str | None]:
        rounds.append(r)
        clock.now += durations[len(rounds) - 1]
        return True, None

    options = {"cadence": Cadence(every_s=10), "stop": Stop(max_rounds=3)} | kw
    s = Scheduler(
        store=store, schedule=row, run_round=run_round, say=lambda _: None, clock=clock,
        sleep=clock.sleep, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    return s


def statuses(s: Scheduler) -> list[tuple[int, str, int | None, float]]:
    return [
        (t["tick"], t["status"], t["round"], t["due_at"] - START) for t in db.ticks(s.store, s.sid)
    ]


def test_on_grid_and_overrun_ticks_are_skipped(tmp_path: Path) -> None:
    clock = Clock()
    s = scheduler(tmp_path, clock, [2.0, 15.0, 1.0])
    s.loop()
    assert statuses(s) == [
        (0, "done", 1, 0.0),
        (1, "done", 2, 10.0),  # ran 15 s: tick 2 (due 20 s) came due meanwhile
        (2, "skipped", None, 20.0),
        (3, "done", 3, 30.0),  # still on the grid from the start, no drift
    ]
    assert "still running" in db.ticks(s.store, s.sid)[2]["reason"]
    assert db.schedules(s.store)[0].status == db.FINISHED


def test_restart_records_missed_and_resumes_the_dead_round(tmp_path: Path) -> None:
    clock = Clock()
    s = scheduler(tmp_path, clock, [1.0, 1.0, 1.0])
    db.claim_tick(s.store, s.sid, 0, START)  # a scheduler claimed tick 0 and died
    clock.now = START + 34.0  # ticks 1-3 passed while it was down
    s.loop()
    got = statuses(s)
    assert got[0] == (0, "done", 1, 0.0)  # the same round, resumed
    assert [t[1] for t in got[1:4]] == ["missed"] * 3
    assert got[4][:3] == (4, "done", 2) and got[5][:3] == (5, "done", 3)


def test_catch_up_one_runs_the_latest_missed(tmp_path: Path) -> None:
    clock = Clock()
    s = scheduler(tmp_path, clock, [1.0, 1.0, 1.0], catch_up="one", stop=Stop(max_rounds=1))
    clock.now = START + 25.0
    s.loop()
    assert statuses(s) == [(0, "missed", None, 0.0), (1, "missed", None, 10.0),
                           (2, "done", 1, 20.0)]  # fmt: skip


def test_once_runs_one_due_round_then_returns(tmp_path: Path) -> None:
    clock = Clock()
    s = scheduler(tmp_path, clock, [1.0, 1.0, 1.0], once=True, stop=Stop())
    s.loop()
    s.loop()  # not due yet: nothing
    clock.now = START + 10.5
    s.loop()
    assert statuses(s) == [(0, "done", 1, 0.0), (1, "done", 2, 10.0)]


def test_until_ends_the_schedule(tmp_path: Path) -> None:
    clock = Clock()
    s = scheduler(tmp_path, clock, [1.0] * 5, stop=Stop(until=START + 25))
    s.loop()
    assert [t[2] for t in statuses(s)] == [1, 2, 3]


def test_cron_cadence_and_parsing() -> None:
    cadence = Cadence(cron="*/15 * * * *")
    assert [t - START for t in cadence.due(START + 1, 0, 3)] == [900, 1800, 2700]
    assert cadence.due_at(START, 0) == START  # a tick at the start itself
    assert parse_duration("1h30m", "--every") == 5400 and parse_duration("51m", "x") == 3060
    assert parse_timestamp("2027-01-15T08:00:00Z", "--until") == parse_timestamp(
        "2027-01-15T08:00", "--until"
    )
    for bad in ("", "5", "5x", "-1m"):
        with pytest.raises(ConfigError, match="--every"):
            parse_duration(bad, "--every")
    with pytest.raises(ConfigError, match="cron expression"):
        Cadence(cron="every day")
