"""stdin/stdout problems: verdicts on crafted solutions, in the real sandbox and through
the Piston client against a loopback Piston-API server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pistonserver import PistonServer

from fleetbench.errors import ConfigError
from fleetbench.sandbox.checkers import RunLimits, make_checker
from fleetbench.sandbox.checkers.local import LocalChecker
from fleetbench.sandbox.checkers.piston import PistonChecker
from fleetbench.scoring.code_io import (
    IOProblem,
    IOSolution,
    IOTest,
    load_io_problems,
    normalise,
    read_io_solutions,
    run_solution,
    summarise,
)
from fleetbench.scoring.wattbot import ScoreInputError

SUM = IOProblem("sum", (IOTest("1 2\n", "3\n"), IOTest("5 5\n", "10")), time_limit_s=1.0)
CRAFTED = {
    "accepted": "a, b = map(int, input().split())\nprint(a + b, '  ')\nprint()\n",
    "wrong_answer": "print(0)",
    "time_limit": "while True:\n    pass\n",
    "runtime_error": "raise ValueError('boom')",
    "compile_error": "def f(:\n",
}


def test_normalise_trailing_whitespace_only() -> None:
    assert normalise("3 \n\n\n") == normalise("3") == "3"
    assert normalise("1  \n2\t\n") == "1\n2"
    assert normalise(" 3") != normalise("3")  # leading whitespace counts
    assert normalise("1 2") != normalise("1  2")


@pytest.mark.parametrize("expected", list(CRAFTED))
def test_local_verdicts(expected: str) -> None:
    result = run_solution(IOSolution("sum", CRAFTED[expected]), SUM, LocalChecker())
    assert result.verdict == expected
    assert result.passed is (expected == "accepted")
    # a compile error stops at the first test; every other solution runs both
    assert [t.verdict for t in result.tests] == [expected] * (
        1 if expected == "compile_error" else 2
    )


def test_local_stdin_forms_and_language_check() -> None:
    code = "import sys\nprint(sum(map(int, open(0).read().split())))\n"
    assert run_solution(IOSolution("sum", code), SUM, LocalChecker()).passed
    with pytest.raises(ConfigError, match="'cpp': the local checker runs Python only"):
        LocalChecker().validate({"python", "cpp"})


def test_piston_verdicts_against_loopback_server() -> None:
    with PistonServer() as server:
        checker = make_checker("piston", server.url)
        checker.validate({"python", "py"})
        verdicts = {name: run_solution(IOSolution("sum", code), SUM, checker).verdict
                    for name, code in CRAFTED.items() if name != "compile_error"}  # fmt: skip
        assert verdicts == {name: name for name in verdicts}
        body = server.bodies[0]
        assert body["language"] == "python" and body["version"] == "3.12.0"
        assert body["stdin"] == "1 2\n" and body["run_timeout"] == 1000
        assert body["run_memory_limit"] == 512 * 2**20
        assert server.seen[0] == "GET /api/v2/runtimes"


def test_piston_missing_language_and_error_responses() -> None:
    with PistonServer() as server:
        checker = PistonChecker(server.url)
        with pytest.raises(ConfigError, match=r"language 'rust': not installed .*valid: bash, py"):
            checker.validate({"python", "rust"})
        assert not [s for s in server.seen if s.startswith("POST")]  # nothing ran
        checker.validate({"python"})
        server.runtimes[0]["version"] = "3.13.0"  # the runtime went away after validation
        out = checker.execute("print(1)", "python", "", RunLimits())
        assert out.ending == "error" and "HTTP 400: python-3.12.0 runtime is unknown" in out.detail
        server.fail_execute = True
        out = checker.execute("print(1)", "python", "", RunLimits())
        assert out.ending == "error" and "HTTP 500: internal error" in out.detail


def test_piston_endpoint_down() -> None:
    with PistonServer() as server:
        url = server.url
    checker = PistonChecker(url, connect_timeout_s=1.0)
    with pytest.raises(ConfigError, match=rf"--endpoint {url}: Piston is not reachable"):
        checker.validate({"python"})


def test_formats_name_file_line_field(tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    good = {"problem_id": "a", "tests": [{"input": "", "output": "1"}]}
    bad = {"problem_id": "b", "tests": [{"input": 1}]}
    problems.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ScoreInputError, match=rf"^{problems}:2: tests\[0\]: input: expected a str"):
        load_io_problems(problems)
    problems.write_text(json.dumps({"problem_id": "a", "tests": [{"input": "", "output": "1"}],
                                    "time_limit_s": 0.5}) + "\n")  # fmt: skip
    loaded = load_io_problems(problems)
    assert loaded["a"].time_limit_s == 0.5
    solutions = tmp_path / "s.jsonl"
    solutions.write_text(
        '{"problem_id": "a", "code": "print(1)"}\n{"problem_id": "zz", "code": ""}\n'
    )
    with pytest.raises(ScoreInputError, match=rf"^{solutions}:2: problem_id: unknown problem 'zz'"):
        read_io_solutions(solutions, loaded)


def test_summary_counts() -> None:
    codes = [CRAFTED["accepted"], CRAFTED["wrong_answer"]]
    results = [
        run_solution(IOSolution("sum", c), SUM, LocalChecker(), i) for i, c in enumerate(codes)
    ]
    summary = summarise(results, ks=(1, 2))
    assert summary["passed"] == 1 and summary["problems"] == 1
    assert summary["pass@k"] == {"1": 0.5, "2": 1.0}
    assert summary["failures"] == {"wrong_answer": 1}
