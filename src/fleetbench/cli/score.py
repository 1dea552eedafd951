"""``fleetbench score``: score existing answer files without running any model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fleetbench.scoring import WattBotScore, score_files

score_app = typer.Typer(
    help="Score existing answer files against reference answers (no model is run).",
    no_args_is_help=True,
)

WATTBOT_HELP = "\n\n".join(
    [
        "Score a WattBot 2025 submission CSV against the solution CSV.",
        "Rows are joined on `id` (inner join); every submission row needs a non-empty "
        "`explanation`; `answer_unit` is not scored. "
        "overall = 0.75 x value_accuracy + 0.15 x ref_overlap + 0.10 x na_recall.",
        "value_accuracy: share of questions whose answer_value matches the truth after "
        "normalisation (true/yes -> 1, false/no -> 0, one leading hedge such as 'about' or '~' "
        "dropped, thousands commas, K/M/B/T suffixes, ranges 'a-b' / 'a to b' -> \\[lo,hi]); "
        "numbers match within 1e-3 (relative or absolute), [..] truths are lists or ranges, "
        "{..} truths are sets, text matches case-insensitively; a blank truth always counts "
        "as correct.",
        "ref_overlap: mean Jaccard overlap of the ref_id sets (both empty -> 1).",
        "na_recall: share of unanswerable questions (blank truth: is_blank, NA, n/a, empty) "
        "answered blank; 1 when there are none.",
        "Bad input prints one line `error: FILE: ...` and exits with code 2.",
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
            help="Print one JSON object: overall, value_accuracy, ref_overlap, na_recall, counts.",
        ),
    ] = False,
    details: Annotated[
        bool, typer.Option("--details", help="Also show every question (JSON: `questions`).")
    ] = False,
) -> None:
    score = score_files(solution, submission)
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
