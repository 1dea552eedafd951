"""``fleetbench score code`` on a generated checkpoint sweep: 3 checkpoints x 2 files, one
malformed, run in the real sandbox with known pass counts; parallel equals serial;
skip-existing, --fresh, --dry-run; the Piston checker through a loopback server."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from pistonserver import PistonServer

PROBLEMS = [
    {"problem_id": "sum", "tests": [{"input": "1 2\n", "output": "3\n"},
                                    {"input": "5 5\n", "output": "10"}]},
    {"problem_id": "rev", "tests": [{"input": "abc\n", "output": "cba"}], "time_limit_s": 2},
]  # fmt: skip
GOOD = {"sum": "a, b = map(int, input().split())\nprint(a + b)\n",
        "rev": "print(input()[::-1], ' ')\n"}  # fmt: skip
BAD = {"wa": "print(0)", "re": "import sys\nsys.exit(3)", "ce": "def (:"}


def _line(problem_id: str, code: str) -> str:
    return json.dumps({"problem_id": problem_id, "code": code}) + "\n"


def make_sweep(root: Path) -> Path:
    """Checkpoints 10, 20, 30; files main.jsonl and extra/more.jsonl in each (step 20's
    extra/more.jsonl malformed at line 2). Passing solutions: 10 main 1/4, extra 2/2;
    20 main 3/4; 30 main 4/4, extra 1/2."""
    sweep = root / "sweep"
    layout = {
        "checkpoint-10": ([("sum", GOOD["sum"]), ("sum", BAD["wa"]), ("rev", BAD["re"]),
                           ("rev", BAD["ce"])], [("sum", GOOD["sum"]), ("rev", GOOD["rev"])]),
        "step_20": ([("sum", GOOD["sum"]), ("sum", GOOD["sum"]), ("rev", GOOD["rev"]),
                     ("rev", BAD["wa"])], None),
        "run/global_step30": ([("sum", GOOD["sum"]), ("sum", GOOD["sum"]), ("rev", GOOD["rev"]),
                               ("rev", GOOD["rev"])], [("sum", BAD["re"]), ("rev", GOOD["rev"])]),
    }  # fmt: skip
    for name, (main, extra) in layout.items():
        folder = sweep / name
        (folder / "extra").mkdir(parents=True)
        (folder / "main.jsonl").write_text("".join(_line(p, c) for p, c in main))
        if extra is None:
            (folder / "extra" / "more.jsonl").write_text(
                _line("sum", "x") + '{"problem_id": "sum"}\n'
            )
        else:
            (folder / "extra" / "more.jsonl").write_text("".join(_line(p, c) for p, c in extra))
    (sweep / "notes").mkdir()  # no step: not a checkpoint, nothing in it
    problems = root / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return problems


def _score(root: Path, out: str, *extra: str) -> Any:
    problems = str(root / "problems.jsonl")
    args = ["--solutions-dir", str(root / "sweep"), "-o", str(root / out), "--problems", problems]
    return run_cli("score", "code", *args, *extra, cwd=root)


def _records(path: Path) -> list[dict[str, Any]]:
    return json.loads((path / "batch_eval_results.json").read_text())


def _strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("duration_s", "skipped")} for r in records]


def test_sweep_counts_parallel_serial_skip_and_dry_run(tmp_path: Path) -> None:
    make_sweep(tmp_path)
    proc = _score(tmp_path, "par", "--workers", "4")
    assert proc.returncode == 0, proc.stderr
    assert "warning: skipping a bad solution file:" in proc.stderr
    assert "more.jsonl:2: code: missing" in proc.stderr
    records = _records(tmp_path / "par")
    keys = ("step", "checkpoint", "file", "passed", "solutions")
    assert [tuple(r[k] for k in keys) for r in records] == [
        (10, "checkpoint-10", "extra/more.jsonl", 2, 2),
        (10, "checkpoint-10", "main.jsonl", 1, 4),
        (20, "step_20", "extra/more.jsonl", 0, 0),
        (20, "step_20", "main.jsonl", 3, 4),
        (30, "run/global_step30", "extra/more.jsonl", 1, 2),
        (30, "run/global_step30", "main.jsonl", 4, 4),
    ]  # fmt: skip
    first = records[1]
    assert first["failures"] == {"compile_error": 1, "runtime_error": 1, "wrong_answer": 1}
    assert first["pass@k"] == {"1": 0.25} and first["problems"] == 2 and first["error"] is None
    assert "code: missing" in records[2]["error"]
    assert records[5]["pass@k"] == {"1": 1.0}
    per_file = json.loads((tmp_path / "par/eval_checkpoint_10/eval_main.json").read_text())
    assert [r["verdict"] for r in per_file["results"]] == [
        "accepted", "wrong_answer", "runtime_error", "compile_error"]  # fmt: skip
    assert len(per_file["results"][0]["tests"]) == 2
    assert (tmp_path / "par/eval_checkpoint_30/eval_extra__more.json").is_file()
    assert not (tmp_path / "par/eval_checkpoint_20/eval_extra__more.json").exists()
    assert "Checkpoint sweep" in proc.stdout

    serial = _score(tmp_path, "ser", "--workers", "1")
    assert serial.returncode == 0, serial.stderr
    assert _strip(_records(tmp_path / "ser")) == _strip(records)

    # skip-existing: remove one result; a dry run says what would happen, then only it runs
    (tmp_path / "par/eval_checkpoint_20/eval_main.json").unlink()
    dry = _score(tmp_path, "par", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("skip, already scored") == 4
    assert "score -> eval_checkpoint_20/eval_main.json" in dry.stdout
    assert "skip, bad file" in dry.stdout
    assert _strip(_records(tmp_path / "par")) == _strip(records)  # dry run wrote nothing
    again = _score(tmp_path, "par")
    assert again.returncode == 0, again.stderr
    rerun = _records(tmp_path / "par")
    assert [bool(r.get("skipped")) for r in rerun] == [True, True, False, False, True, True]
    assert _strip(rerun) == _strip(records)
    fresh = _score(tmp_path, "par", "--fresh")
    assert not any(r.get("skipped") for r in _records(tmp_path / "par"))
    assert fresh.returncode == 0

    # the store: report and matrix treat each (checkpoint, file) as a run
    proc = run_cli("report", "-o", str(tmp_path / "par"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with (tmp_path / "par/master_results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [
        (r["model_name"], r["settings_label"], r["quality_metric"], float(r["quality_score"]))
        for r in rows
    ] == [
        ("checkpoint-10", "extra/more.jsonl", "pass@1", 1.0),
        ("checkpoint-10", "main.jsonl", "pass@1", 0.25),
        ("step_20", "main.jsonl", "pass@1", 0.75),
        ("run/global_step30", "extra/more.jsonl", "pass@1", 0.5),
        ("run/global_step30", "main.jsonl", "pass@1", 1.0),
    ]  # fmt: skip (rescored with --fresh: still one run per file)
    proc = run_cli("matrix", "-o", str(tmp_path / "par"), "--task", "code_io", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with (tmp_path / "par/matrix_code_io.csv").open() as handle:
        matrix = {r["sample_id"]: r for r in csv.DictReader(handle)}
    assert matrix["rev"]["checkpoint-10 [main.jsonl] correct"] == "0"
    assert matrix["sum"]["checkpoint-10 [main.jsonl] correct"] == "0.5"
    assert matrix["rev"]["step_20 [main.jsonl] correct"] == "0.5"


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    make_sweep(tmp_path)
    (tmp_path / "problems.jsonl").write_text('{"problem_id": "sum", "tests": "nope"}\n')
    proc = _score(tmp_path, "out")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"error: {tmp_path}/problems.jsonl:1: tests: expected a list, got str"
    )
    proc = run_cli(
        "score", "code", "--solutions-dir", str(tmp_path / "nowhere"), "-o", "x", cwd=tmp_path
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: --solutions-dir")
    assert not (tmp_path / "out").exists()


def test_piston_checker_sweep_and_down(tmp_path: Path) -> None:
    make_sweep(tmp_path)
    with PistonServer() as server:
        proc = _score(tmp_path, "pis", "--checker", "piston", "--endpoint", server.url)
        assert proc.returncode == 0, proc.stderr
        url = server.url
    passed = [r["passed"] for r in _records(tmp_path / "pis")]
    assert passed == [2, 1, 0, 3, 1, 4]  # the compile error is a runtime error on Piston's python
    down = _score(tmp_path, "down", "--checker", "piston", "--endpoint", url)
    assert down.returncode == 2
    lines = down.stderr.strip().splitlines()  # the bad file's warning, then one error line
    assert lines[-1].startswith(f"error: --endpoint {url}: Piston is not reachable")
    assert [line.startswith("warning:") for line in lines] == [True, False]
    assert not (tmp_path / "down").exists()


@pytest.mark.parametrize("lang", ["rust"])
def test_piston_missing_language(tmp_path: Path, lang: str) -> None:
    make_sweep(tmp_path)
    target = tmp_path / "sweep/step_20/main.jsonl"
    target.write_text(json.dumps({"problem_id": "sum", "code": "fn main(){}", "language": lang}))
    with PistonServer() as server:
        proc = _score(tmp_path, "pis", "--checker", "piston", "--endpoint", server.url)
        assert not [s for s in server.seen if s.startswith("POST")]
    assert proc.returncode == 2
    assert f"language '{lang}': not installed on the Piston service" in proc.stderr


def test_file_budget_and_humaneval_files(tmp_path: Path) -> None:
    """--timeout is a budget per file: a file of slow solutions records the error and no
    result (so it is retried); HumanEval samples files score against --problems."""
    sweep = tmp_path / "sweep"
    (sweep / "checkpoint-1").mkdir(parents=True)
    (sweep / "checkpoint-2").mkdir()
    slow = "import time\ntime.sleep(1.5)\nprint(3)\n"
    (sweep / "checkpoint-1/slow.jsonl").write_text(_line("sum", slow) * 6)
    (sweep / "checkpoint-2/fast.jsonl").write_text(_line("sum", GOOD["sum"]))
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({**PROBLEMS[0], "time_limit_s": 5}) + "\n")
    proc = _score(tmp_path, "out", "--timeout", "1", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    slow_rec, fast_rec = _records(tmp_path / "out")
    assert slow_rec["error"].startswith("evaluation timed out after 1 s (")
    assert not (tmp_path / "out/eval_checkpoint_1").exists()
    assert fast_rec["error"] is None and fast_rec["passed"] == 1

    he = {"task_id": "T/0", "prompt": "def add(a, b):\n", "entry_point": "add",
          "test": "def check(f):\n    assert f(1, 2) == 3\n"}  # fmt: skip
    problems.write_text(json.dumps(he) + "\n")
    samples = [{"task_id": "T/0", "completion": "    return a + b\n"},
               {"task_id": "T/0", "completion": "    return a - b\n"}]  # fmt: skip
    (sweep / "checkpoint-2/fast.jsonl").write_text("".join(json.dumps(x) + "\n" for x in samples))
    proc = _score(tmp_path, "he")
    assert proc.returncode == 0, proc.stderr
    slow_rec, he_rec = _records(tmp_path / "he")
    assert "stdin/stdout solutions cannot use --problems" in slow_rec["error"]
    assert (he_rec["format"], he_rec["passed"], he_rec["solutions"]) == ("humaneval", 1, 2)
    assert he_rec["failures"] == {"failed": 1} and he_rec["pass@k"] == {"1": 0.5}
