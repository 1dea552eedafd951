"""Live progress for a batch (rich bars on a terminal, plain lines otherwise)."""

from __future__ import annotations

import time
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


class ProgressObserver:
    """Shows the batch (runs done / to do) and the current run (samples, ETA, tokens/s)."""

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
        self._run: TaskID | None = None
        self._tokens = 0
        self._unknown_tokens = False
        self._window: tuple[float, float] | None = None  # first send, last reply
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

    def run_started(self, run: PlannedRun) -> None:
        self._index += 1
        self._tokens, self._unknown_tokens, self._window = 0, False, None
        label = f"{run.spec.model.name} / {run.spec.task.name}"
        if run.spec.settings_label:
            label += f" [{run.spec.settings_label}]"
        if self._run is not None:
            self.progress.remove_task(self._run)
        self._run = self.progress.add_task(
            label, total=run.planned, completed=run.stored, rate="loading…"
        )
        self._started = time.monotonic()
        if not self.live:
            resume = f" (resuming at {run.stored}/{run.planned})" if run.stored else ""
            self.console.print(
                f"[{self._index}/{self._total}] {label}: {run.planned} samples{resume}"
            )

    def run_event(self, run_id: str, event: Event) -> None:
        if self._run is None:
            return
        kind = event.get("event")
        if kind == "start":
            self.progress.update(self._run, completed=int(event.get("done", 0)))
        elif kind == "loaded":
            self.progress.update(self._run, rate=f"loaded in {event['load_time_s']:.2f}s")
        elif kind == "sample":
            self._count(event)
            self.progress.update(self._run, advance=1, rate=self._rate())

    def _count(self, event: Event) -> None:
        tokens = event.get("completion_tokens")
        if tokens is not None:
            self._tokens += int(tokens)
        elif event.get("ok"):
            self._unknown_tokens = True
        received = event.get("received_at")
        if received is not None:
            sent = event.get("sent_at")
            start = float(sent if sent is not None else received)
            first = min(self._window[0], start) if self._window else start
            self._window = (first, max(self._window[1], received) if self._window else received)

    def _rate(self) -> str:
        """Tokens delivered per second of this attempt's wall time (as the summary's
        throughput), or why there is no figure."""
        if self._unknown_tokens:
            return "tokens unknown"
        if self._window is None or self._window[1] <= self._window[0]:
            return ""
        return f"{self._tokens / (self._window[1] - self._window[0]):6.1f} tok/s"

    def run_finished(self, run: PlannedRun, outcome: RunOutcome) -> None:
        if self._batch is not None:
            self.progress.advance(self._batch)
        colour = status_colour(outcome.status)
        message = (
            f"[{colour}]{outcome.status}[/{colour}] {run.spec.model.name} / "
            f"{run.spec.task.name}: {outcome.samples_stored}/{run.planned} samples"
        )
        if outcome.error:
            message += f" — {outcome.error}"
        self.console.print(message)


def status_colour(status: str) -> str:
    """Green for completed, yellow for completed_with_errors, red for anything else."""
    return {"completed": "green", "completed_with_errors": "yellow"}.get(status, "red")


def fmt(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None or value == "" else format(value, spec)
