"""``fleetbench matrix``: the per-question results matrix of stored runs, as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetbench.cli.run import DEFAULT_OUTPUT
from fleetbench.report.matrix import build_matrix, write_matrix
from fleetbench.report.select import select_task_runs, split_ids
from fleetbench.store.opener import open_store

OUTPUT_HELP = f"Results folder holding fleetbench.db (default: ./{DEFAULT_OUTPUT})."
MATRIX_HELP = "\n\n".join(
    [
        "Write the results matrix of stored runs as CSV: one row per question, two columns "
        "per run.",
        "Columns: sample_id, sample_index, question, target (for tasks with a reference "
        "answer), then for every run `<model> [<settings>] prediction` and `... correct`.",
        "prediction: the answer text; wattbot: the parsed answer_value; humaneval: the "
        "fraction of the problem's samples that passed. correct: the sample's score: "
        "custom `correct` (0/1), wattbot `value_correct` (0/1), humaneval the pass "
        "fraction; empty for textgen.",
        "Runs over different sample sets are aligned by sample id; a question a run did not "
        "answer leaves its cells empty. When two runs share a model name and settings label, "
        "their run ids are added to the column names.",
        "Bad input (no store, an unknown run id, runs of several tasks without --task) "
        "prints one line and exits with code 2.",
    ]
)
RUNS_HELP = (
    "Only these runs, in this order: run ids (or unique prefixes), repeated or "
    "comma-separated (--runs A --runs B, --runs A,B). Default: every run of the task."
)


def matrix(
    output: Annotated[
        Path, typer.Option("--output", "-o", help=OUTPUT_HELP, show_default=False)
    ] = DEFAULT_OUTPUT,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="Task whose runs to compare (textgen, wattbot, custom, humaneval); required "
            "when the selected runs are of several tasks, since their questions differ.",
            show_default=False,
        ),
    ] = None,
    runs: Annotated[
        list[str] | None, typer.Option("--runs", help=RUNS_HELP, show_default=False)
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Only runs whose model name contains this (case-insensitive); repeat for several.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="CSV file to write (default: OUTPUT/matrix_<task>.csv); written atomically.",
            show_default=False,
        ),
    ] = None,
) -> None:
    store = open_store(output.resolve())
    try:
        task_name, selected = select_task_runs(store, task, split_ids(runs), model or [])
        result = build_matrix(store, task_name, selected)
    finally:
        store.close()
    path = write_matrix(out or output / f"matrix_{task_name}.csv", result)
    typer.echo(f"matrix: {len(result.rows)} question(s) x {len(selected)} run(s) -> {path}")
