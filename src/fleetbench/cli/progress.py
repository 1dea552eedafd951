"""Live progress for a batch (rich bars on a terminal, plain lines otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fleetbench.runner import FILTERED, SKIP, PlannedRun
from fleetbench.runner.job import Event, RunOutcome


@dataclass
class _Live:
    """One active run's line: its bar and what its rate is computed from."""

    task: TaskID | None
    label: str
    tokens: int = 0
    unknown_tokens: bool = False
    window: tuple[float, float] | None = None  # first send, last reply

    def count(self, event: Event) -> None:
        tokens = event.get("completion_tokens")
        if tokens is not None:
            self.tokens += int(tokens)
        elif event.get("ok"):
            self.unknown_tokens = True
        received = event.get("received_at")
        if received is not None:
            sent = event.get("sent_at")
            start = float(sent if sent is not None else received)
            first = min(self.window[0], start) if self.window else start
            self.window = (first, max(self.window[1], received) if self.window else received)

    def rate(self) -> str:
        """Tokens delivered per second of this attempt's wall time (as the summary's
        throughput), or why there is no figure."""
        if self.unknown_tokens:
            return "tokens unknown"
        if self.window is None or self.window[1] <= self.window[0]:
            return ""
        return f"{self.tokens / (self.window[1] - self.window[0]):6.1f} tok/s"


class ProgressObserver:
    """Shows the batch (runs done / to do, ETA) and one line per active run (its slot
    when runs execute in parallel, samples done / total, tokens/s)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
        )
        self._batch: TaskID | None = None
        self._active: dict[str, _Live] = {}
        self._index = 0
        self._total = 0

    def __enter__(self) -> ProgressObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def batch_started(self, runs: list[PlannedRun]) -> None:
        todo = [r for r in runs if r.action != SKIP]
        self._total = len(todo)
        filtered = [r for r in runs if r.reason.startswith(FILTERED)]
        if filtered:
            self.console.print(f"[dim]{len(filtered)} run(s) filtered out[/dim]")
        for run in runs:
            if run.action == SKIP and run not in filtered:
                self.console.print(
                    f"[dim]skip {run.spec.model.name} / {run.spec.task.name}: {run.reason}[/dim]"
                )
        self._batch = self.progress.add_task("batch", total=len(todo), rate="")

    def run_started(self, run: PlannedRun, slot: str | None = None) -> None:
        self._index += 1
        label = f"{run.spec.model.name} / {run.spec.task.name}"
        if run.spec.settings_label:
            label += f" [{run.spec.settings_label}]"
        shown = f"[{slot}] {label}" if slot else label
        task = self.progress.add_task(shown, total=run.total, completed=run.stored, rate="loading…")
        self._active[run.run_id] = _Live(task, label)
        if not self.live:
            resume = f" (resuming at {run.stored}/{run.total})" if run.stored else ""
            where = f" on {slot}" if slot else ""
            self.console.print(
                f"[{self._index}/{self._total}] {label}{where}: {run.total} samples{resume}"
            )

    def run_event(self, run_id: str, event: Event) -> None:
        live = self._active.get(run_id)
        if live is None or live.task is None:
            return
        kind = event.get("event")
        if kind == "start":
            self.progress.update(live.task, completed=int(event.get("done", 0)))
        elif kind == "loaded":
            self.progress.update(live.task, rate=f"loaded in {event['load_time_s']:.2f}s")
        elif kind == "sample":
            live.count(event)
            self.progress.update(live.task, advance=1, rate=live.rate())

    def run_finished(self, run: PlannedRun, outcome: RunOutcome) -> None:
        if self._batch is not None:
            self.progress.advance(self._batch)
        live = self._active.pop(run.run_id, None)
        if live is not None and live.task is not None:
            self.progress.remove_task(live.task)
        colour = status_colour(outcome.status)
        message = (
            f"[{colour}]{outcome.status}[/{colour}] {run.spec.model.name} / "
            f"{run.spec.task.name}: {outcome.samples_stored}/{run.total} samples"
        )
        if outcome.error:
            message += f" — {outcome.error}"
        self.console.print(message)


def status_colour(status: str) -> str:
    """Green for completed, yellow for completed_with_errors, red for anything else."""
    return {"completed": "green", "completed_with_errors": "yellow"}.get(status, "red")


def fmt(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None or value == "" else format(value, spec)
