"""The worker: executes one run attempt in its own process.

Started as ``python -m fleetbench.runner.worker JOB.json`` in a new process group, so
a timeout can kill it with everything it spawned. It writes each sample to the store
as soon as it is generated (one transaction each) and reports progress as JSON lines
on stdout; logs and native library output go to the run's ``run.log``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetbench.backends import (
    BACKENDS,
    IN_PROCESS,
    Backend,
    BackendContext,
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    Message,
    ToolSupport,
    get_backend_class,
)
from fleetbench.catalog.spec import ModelSpec
from fleetbench.meters import host_info, peak_rss_mb
from fleetbench.meters.devices import WindowReading
from fleetbench.meters.estimate import watts_per_core
from fleetbench.meters.host import cpu_model
from fleetbench.meters.monitor import EnergyMonitor, Mark, MeterSettings
from fleetbench.runner.job import RunJob
from fleetbench.runner.plan import EnergySettings
from fleetbench.runner.recorder import Recorder, open_recorder
from fleetbench.scoring.response import split_response
from fleetbench.store import SampleRow
from fleetbench.tasks import (
    TASKS,
    ChatFn,
    Interaction,
    Sample,
    Task,
    apply_affixes,
    get_task_class,
)

log = logging.getLogger("fleetbench.worker")


def emit(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def die_with_parent(parent_pid: int) -> None:
    """Never outlive the batch: a ``kill -9`` of fleetbench must not leave writers behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def run_job(job: RunJob) -> None:
    """Generate the run's samples not yet stored, round after round: build their
    requests, load the backend once, then record each result as it arrives (see
    ``SampleRecorder``). An interrupted round continues where it stopped."""
    spec = job.spec
    store = open_recorder(job)
    task = _task(spec.task.name, spec.task_options)
    samples = task.samples()[: job.planned_samples]
    done = store.done_keys(spec.run_id)
    todo = {r: [s for s in samples if (r, s.index) not in done] for r in job.rounds}
    left = sum(len(t) for t in todo.values())
    emit("start", planned=len(samples) * len(job.rounds), done=len(samples) * len(todo) - left)
    log.info(
        "attempt %d: rounds %s, %d samples each, %d to do",
        job.attempt,
        job.rounds,
        len(samples),
        left,
    )
    if not left:
        return

    backend, monitor = _load(job, store)
    scope = energy_scope(backend)  # stored with every energy record of the attempt
    run_mark = monitor.begin()
    try:
        run_mark = _idle_then_begin(monitor, spec.energy.idle_baseline_s, store, job, scope)
        for round_no, round_todo in todo.items():
            if not round_todo:
                continue
            requests = build_requests(job, task, round_todo)
            recorder = SampleRecorder(job, store, task, backend, round_todo, requests, round_no)
            if callable(interact := getattr(task, "interact", None)):
                for sample in round_todo:  # multi-turn: one conversation after another
                    mark = monitor.begin()
                    messages = task.messages(sample, spec.model.system_prompt)
                    done = interact(sample, messages, chat_fn(job, backend, requests[sample.index]))
                    recorder.record(_with_times(done.result, time.time()), monitor.end(mark), done)
                continue
            for result, mark in _metered(backend.generate(requests.values()), monitor):
                result = _with_times(result, time.time())
                recorder.record(result, monitor.end(mark))
    finally:
        whole = monitor.end(run_mark)
        backend.close()
        monitor.close()
        record = {**monitor.record(), "scope": scope, "window": whole.to_json()}
        store.update_attempt(
            spec.run_id, job.attempt, peak_rss_mb=peak_rss_mb(), energy_json=json.dumps(record)
        )
        store.close()


def _load(job: RunJob, store: Recorder) -> tuple[Backend, EnergyMonitor]:
    """The loaded backend and its energy monitor; the load is recorded with the attempt.
    On a failed load both are closed again."""
    spec = job.spec
    backend_cls = get_backend_class(spec.model.backend)
    backend = backend_cls(
        backend_cls.Options.model_validate(spec.backend_options),
        BackendContext(model=spec.model, run_dir=job.run_dir),
    )
    # Probed before the load, so GPU memory peaks include loading the model.
    monitor = EnergyMonitor.probe(meter_settings(spec.energy))
    try:
        info = backend.load()
    except BaseException:
        backend.close()  # a managed server that started but failed later must stop
        monitor.close()
        raise
    store.update_attempt(
        spec.run_id,
        job.attempt,
        load_time_s=info.load_time_s,
        startup_s=info.startup_s,
        details_json=info.model_dump_json(),
        peak_rss_mb=peak_rss_mb(),
    )
    emit("loaded", load_time_s=info.load_time_s)
    log.info("loaded %s in %.2f s", info.model_path or spec.model.name, info.load_time_s)
    return backend, monitor


def _task(name: str, options: dict[str, Any]) -> Task:
    cls = get_task_class(name)
    task: Task = cls(cls.Options.model_validate(options))
    return task


def build_requests(job: RunJob, task: Task, todo: list[Sample]) -> dict[int, GenerationRequest]:
    """One request per sample to generate, by sample index: the task's messages wrapped
    in the model's prompt affixes, with the run's settings (seeded per repeat)."""
    model = job.spec.model
    return {
        s.index: GenerationRequest(
            index=s.index,
            messages=apply_affixes(
                task.messages(s, model.system_prompt), model.prompt_prefix, model.prompt_suffix
            ),
            settings=_sample_settings(job.spec.generation, s),
            chat_template_kwargs=model.chat_template_kwargs,
        )
        for s in todo
    }


def chat_fn(job: RunJob, backend: Backend, request: GenerationRequest) -> ChatFn:
    """One model call per turn of a multi-turn task: ``request``'s settings with the
    conversation so far (its last user turn wrapped in the model's prompt affixes)."""
    hook = getattr(backend, "tool_calling", None)
    return BackendChat(job, backend, request, hook() if callable(hook) else "unavailable")


@dataclass
class BackendChat:
    """``ChatFn`` over a loaded backend; ``tool_support`` tells the task whether the
    ``tools`` it offers reach the model (they are only sent where they can be)."""

    job: RunJob
    backend: Backend
    request: GenerationRequest
    tool_support: ToolSupport

    def __call__(
        self, messages: list[Message], tools: list[dict[str, Any]] | None = None, /
    ) -> GenerationResult:
        model = self.job.spec.model
        wrapped = apply_affixes(messages, model.prompt_prefix, model.prompt_suffix)
        update: dict[str, Any] = {"messages": wrapped}
        if tools and self.tool_support != "unavailable":
            update["tools"] = tools
        results = list(self.backend.generate([self.request.model_copy(update=update)]))
        if not results:
            return GenerationResult(
                index=self.request.index, error="the backend returned no result"
            )
        return results[0]


class SampleRecorder:
    """Turns each result into a stored, scored sample: one transaction per sample, written
    as soon as the result arrives, so a killed attempt loses nothing it generated."""

    def __init__(
        self,
        job: RunJob,
        store: Recorder,
        task: Task,
        backend: Backend,
        todo: list[Sample],
        requests: dict[int, GenerationRequest],
        round_no: int = 1,
    ) -> None:
        self.job, self.store, self.task, self.backend = job, store, task, backend
        self.samples = {s.index: s for s in todo}
        self.requests = requests
        self.round = round_no

    def record(
        self, result: GenerationResult, reading: WindowReading, done: Interaction | None = None
    ) -> None:
        """Store ``result`` with the energy ``reading`` of its meter window (and, for a
        multi-turn sample, its whole conversation and the task's scores)."""
        sample = self.samples[result.index]
        stored = self.store.add_sample(self.sample_row(sample, result, reading, done))
        if not stored:
            log.warning(
                "sample %d of round %d was already stored; kept the earlier one",
                sample.index,
                self.round,
            )
        emit(
            "sample",
            index=sample.index,
            round=self.round,
            ok=result.ok,
            completion_tokens=result.completion_tokens,  # None: unknown, never 0
            latency_s=result.latency_s,
            sent_at=result.sent_at,
            received_at=result.received_at,
        )
        if result.error:
            log.warning("sample %d failed: %s", sample.index, result.error)

    def sample_row(
        self,
        sample: Sample,
        result: GenerationResult,
        reading: WindowReading,
        done: Interaction | None = None,
    ) -> SampleRow:
        spec = self.job.spec
        messages = done.messages if done else self.requests[result.index].messages
        split = split_response(result.text)
        # Scorers judge the visible answer only, never the reasoning.
        answer = result.model_copy(update={"text": split.answer})
        scores = done.scores if done else self.task.score(sample, answer)
        return SampleRow(
            run_id=spec.run_id,
            round=self.round,
            sample_index=sample.index,
            sample_id=sample.id,
            attempt=self.job.attempt,
            input_json=json.dumps(
                {
                    "prompt": sample.prompt,
                    "messages": [m.model_dump() for m in messages],
                    # The prompt's category (prompt/question files): exported, grouped by.
                    **({"category": c} if (c := sample.metadata.get("category")) else {}),
                }
            ),
            output_text=result.text,
            answer_text=split.answer,
            reasoning_text=split.reasoning,
            reasoning_tokens=_reasoning_tokens(self.backend, result, split.reasoning),
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_s=result.latency_s,
            ttft_s=result.ttft_s,
            itl_s=result.itl_s,
            sent_at=result.sent_at,
            received_at=result.received_at,
            intended_send_at=result.intended_send_at,
            actual_send_at=result.actual_send_at,
            finish_reason=result.finish_reason,
            token_source=result.token_source,
            retries=result.retries,
            error=result.error,
            **reading.sample_fields(),
            cost_usd=sample_cost(spec.model, result),
            server_timing_json=_json_or_none(result.server_timing),
            scores_json=_json_or_none(scores),
        )


def meter_settings(energy: EnergySettings) -> MeterSettings:
    return MeterSettings(
        watts_per_core=energy.watts_per_core,
        default_watts_per_core=energy.default_watts_per_core,
        idle_baseline_s=energy.idle_baseline_s,
        poll_hz=energy.poll_hz,
    )


def energy_scope(backend: Any) -> str:
    """What the meters see of the model's work (``Backend.energy_scope``); a backend
    without the hook generates in this process tree."""
    hook = getattr(backend, "energy_scope", None)
    return str(hook()) if callable(hook) else IN_PROCESS


def _idle_then_begin(
    monitor: EnergyMonitor, idle_s: float, store: Recorder, job: RunJob, scope: str
) -> Mark:
    """Idle power with the model loaded, before any sample; the record is stored at once
    so a killed attempt still says how its energy was measured."""
    monitor.measure_idle(idle_s)
    record = {**monitor.record(), "scope": scope}
    store.update_attempt(job.spec.run_id, job.attempt, energy_json=json.dumps(record))
    log.info(
        "energy (%s): %s; idle W %s; not measured: %s",
        scope,
        ", ".join(f"{d['id']} {d['method']}" for d in record["devices"]),
        record["idle_w"] or "-",
        "; ".join(f"{k}: {v}" for k, v in record["unmeasured"].items()) or "-",
    )
    return monitor.begin(relist=True)  # a managed server started during the load


def _metered(
    results: Iterator[GenerationResult], monitor: EnergyMonitor
) -> Iterator[tuple[GenerationResult, Mark]]:
    """Open a meter window before each result is produced; the consumer closes it."""
    while True:
        mark = monitor.begin()
        try:
            result = next(results)
        except StopIteration:
            return
        yield result, mark


def _with_times(result: GenerationResult, arrived: float) -> GenerationResult:
    """Send and receive times from the backend, else from the arrival and latency."""
    if result.received_at is not None:
        return result
    sent = arrived - result.latency_s if result.latency_s is not None else None
    return result.model_copy(update={"received_at": arrived, "sent_at": sent})


def _sample_settings(settings: GenerationSettings, sample: Sample) -> GenerationSettings:
    """Repeated samples of one problem (pass@k) need distinct seeds to be independent."""
    offset = int(sample.metadata.get("seed_offset", 0))
    return settings.model_copy(update={"seed": settings.seed + offset}) if offset else settings


def sample_cost(model: ModelSpec, result: GenerationResult) -> float | None:
    """USD from the catalogue's prices per 1M tokens; None without a price or counts."""
    prices = (model.price_input_per_1m, model.price_output_per_1m)
    counts = (result.prompt_tokens, result.completion_tokens)
    if all(p is None for p in prices):
        return None
    cost = 0.0
    for price, count in zip(prices, counts, strict=True):
        if price is not None:
            if count is None:
                return None
            cost += price * count / 1e6
    return cost


def _reasoning_tokens(
    backend: Backend, result: GenerationResult, reasoning: str | None
) -> int | None:
    """Tokens of the reasoning text (tags excluded), re-tokenized with the backend's
    optional ``count_tokens`` and capped at the completion tokens they are part of;
    None where unknown (no ``count_tokens``, or a failed generation)."""
    count = getattr(backend, "count_tokens", None)
    if not (callable(count) and result.ok):
        return None
    tokens = int(count(reasoning)) if reasoning else 0
    if result.completion_tokens is not None:
        tokens = min(tokens, result.completion_tokens)
    return tokens


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def preload() -> Iterator[None]:
    """What the zygote (runner/zygote.py) does once for all the workers it forks, each
    of which would otherwise redo it (~25 ms a run): read the installed plugins' entry
    points (every installed distribution's metadata) and look up this CPU in the
    per-core power table, and find the platform's name for ``host_info`` (``uname -p``
    in a subprocess, ~1.5 ms a worker). One step at a time: the zygote takes them while
    no worker is waiting to be forked, so the first ones are not delayed. (The batch's
    built-in task modules follow, asked for with the forks: runner/process.py.)"""
    TASKS.names()
    BACKENDS.names()
    yield
    watts_per_core(cpu_model(), None, 0.0)
    yield
    platform.platform()  # cached in the module, so every fork has it


def main(argv: list[str], parent_pid: int | None = None) -> int:
    """Run the job in ``argv[1]``; ``parent_pid``: the process that started this one
    when it is not the batch (the zygote, runner/zygote.py)."""
    job = RunJob.model_validate_json(Path(argv[1]).read_text(encoding="utf-8"))
    die_with_parent(job.parent_pid if parent_pid is None else parent_pid)
    if job.cpus and hasattr(os, "sched_setaffinity"):  # the executor's core share
        os.sched_setaffinity(0, job.cpus)
    logging.basicConfig(
        filename=job.run_dir / "run.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info(
        "worker pid %d for run %s; host %s", os.getpid(), job.spec.run_id, json.dumps(host_info())
    )
    try:
        run_job(job)
    except Exception as exc:
        log.error("run failed:\n%s", traceback.format_exc())
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
