"""stdin/stdout problems: run each solution on every test, compare outputs, give verdicts.

Problems JSONL, one per line: ``problem_id`` (string), ``tests`` (a non-empty list of
``{"input": str, "output": str}``), optional ``time_limit_s`` (default 2) and
``memory_limit_mb`` (default 512); ``statement`` (the text a model is shown when the
problems are a generation task) is optional. Solutions JSONL: ``problem_id``, ``code``,
optional ``language`` (default ``python``); any number of solutions per problem.

A test is *accepted* when the program exits normally and its output equals the expected
output after normalising trailing whitespace (every line's end, and trailing blank lines:
``"3 \\n\\n"`` equals ``"3"``; leading and inner whitespace count). Otherwise its verdict is
``wrong_answer``, ``time_limit``, ``runtime_error`` (a memory-limit kill included; the
detail says which) or ``compile_error``; ``error`` means the checker itself failed. A
solution is accepted when all its tests are; its verdict is its first test's that is not
(a compile error stops at the first test: the others would say the same).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fleetbench.sandbox.checkers import Checker, Execution, RunLimits
from fleetbench.scoring.humaneval import read_jsonl
from fleetbench.scoring.passk import DEFAULT_KS, pass_at_ks
from fleetbench.scoring.wattbot import ScoreInputError

Verdict = Literal["accepted", "wrong_answer", "time_limit", "runtime_error", "compile_error",
                  "error"]  # fmt: skip
VERDICTS: tuple[Verdict, ...] = ("accepted", "wrong_answer", "time_limit", "runtime_error",
                                 "compile_error", "error")  # fmt: skip
DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_MEMORY_MB = 512
DEFAULT_LANGUAGE = "python"


@dataclass(frozen=True)
class IOTest:
    input: str
    output: str


@dataclass(frozen=True)
class IOProblem:
    problem_id: str
    tests: tuple[IOTest, ...]
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_limit_mb: int = DEFAULT_MEMORY_MB
    statement: str = ""


@dataclass(frozen=True)
class IOSolution:
    problem_id: str
    code: str
    language: str = DEFAULT_LANGUAGE
    line: int = 0


@dataclass(frozen=True)
class TestResult:
    verdict: Verdict
    detail: str
    duration_s: float


@dataclass
class SolutionResult:
    problem_id: str
    index: int
    """The solution's position among its problem's solutions (0-based, file order)."""
    language: str
    verdict: Verdict
    passed: bool
    tests: list[TestResult] = field(default_factory=list)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def normalise(text: str) -> str:
    """Output as compared: trailing whitespace of every line and trailing blank lines gone."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ScoreInputError(f"{where}: {key}: missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        name = kind.__name__ if isinstance(kind, type) else "number"
        raise ScoreInputError(f"{where}: {key}: expected a {name}, got {type(value).__name__}")
    return value


def _object(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ScoreInputError(f"{where}: expected a JSON object")
    return obj


def _problem(obj: Any, where: str) -> IOProblem:
    obj = _object(obj, where)
    problem_id = _field(obj, "problem_id", str, where)
    tests_raw = _field(obj, "tests", list, where)
    if not tests_raw:
        raise ScoreInputError(f"{where}: tests: empty; valid: a list of {{input, output}}")
    tests = []
    for i, test in enumerate(tests_raw):
        spot = f"{where}: tests[{i}]"
        test = _object(test, spot)
        tests.append(IOTest(_field(test, "input", str, spot), _field(test, "output", str, spot)))
    limit = obj.get("time_limit_s", DEFAULT_TIME_LIMIT_S)
    if not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0:
        raise ScoreInputError(f"{where}: time_limit_s: expected a number > 0")
    memory = obj.get("memory_limit_mb", DEFAULT_MEMORY_MB)
    if not isinstance(memory, int) or isinstance(memory, bool) or memory < 16:
        raise ScoreInputError(f"{where}: memory_limit_mb: expected an integer >= 16")
    statement = obj.get("statement", "")
    if not isinstance(statement, str):
        raise ScoreInputError(f"{where}: statement: expected a str")
    return IOProblem(problem_id, tuple(tests), float(limit), memory, statement)


def load_io_problems(path: Path) -> dict[str, IOProblem]:
    """Problems by id, in file order; ScoreInputError names file, line and field."""
    problems: dict[str, IOProblem] = {}
    for number, obj in read_jsonl(path):
        problem = _problem(obj, f"{path}:{number}")
        if problem.problem_id in problems:
            raise ScoreInputError(f"{path}:{number}: problem_id: {problem.problem_id!r} repeated")
        problems[problem.problem_id] = problem
    if not problems:
        raise ScoreInputError(f"{path}: no problems")
    return problems


def is_io_problems(path: Path) -> bool:
    """Whether a problems file is in this format (its first object has ``tests``)."""
    for _, obj in read_jsonl(path):
        return isinstance(obj, dict) and "tests" in obj and "problem_id" in obj
    return False


def read_io_solutions(path: Path, problems: dict[str, IOProblem]) -> list[IOSolution]:
    solutions = []
    for number, obj in read_jsonl(path):
        where = f"{path}:{number}"
        obj = _object(obj, where)
        problem_id = _field(obj, "problem_id", str, where)
        code = _field(obj, "code", str, where)
        language = obj.get("language", DEFAULT_LANGUAGE)
        if not isinstance(language, str) or not language.strip():
            raise ScoreInputError(f"{where}: language: expected a non-empty str")
        if problem_id not in problems:
            raise ScoreInputError(f"{where}: problem_id: unknown problem {problem_id!r}")
        solutions.append(IOSolution(problem_id, code, language.strip().lower(), number))
    if not solutions:
        raise ScoreInputError(f"{path}: no solutions")
    return solutions


def _verdict(execution: Execution, expected: str) -> TestResult:
    if execution.ending == "exited":
        ok = normalise(execution.stdout) == normalise(expected)
        if ok:
            return TestResult("accepted", "", execution.duration_s)
        got = normalise(execution.stdout).splitlines()[:1] or [""]
        return TestResult("wrong_answer", f"first line {got[0][:80]!r}", execution.duration_s)
    ending = execution.ending
    verdict: Verdict = "runtime_error" if ending == "memory_limit" else ending
    return TestResult(verdict, execution.detail, execution.duration_s)


def run_solution(
    solution: IOSolution, problem: IOProblem, checker: Checker, index: int = 0
) -> SolutionResult:
    """Every test of ``problem`` on ``solution`` (stopping early only at a compile error)."""
    limits = RunLimits(problem.time_limit_s, problem.memory_limit_mb)
    tests: list[TestResult] = []
    for test in problem.tests:
        result = _verdict(checker.execute(solution.code, solution.language, test.input, limits),
                          test.output)  # fmt: skip
        tests.append(result)
        if result.verdict == "compile_error":
            break
    first_bad: Verdict = next((t.verdict for t in tests if t.verdict != "accepted"), "accepted")
    return SolutionResult(
        solution.problem_id, index, solution.language, first_bad, first_bad == "accepted",
        tests, round(sum(t.duration_s for t in tests), 4),
    )  # fmt: skip


def indexed(solutions: Sequence[IOSolution]) -> list[tuple[IOSolution, int]]:
    """Each solution with its position among its problem's solutions."""
    seen: Counter[str] = Counter()
    out = []
    for solution in solutions:
        out.append((solution, seen[solution.problem_id]))
        seen[solution.problem_id] += 1
    return out


def summarise(results: Iterable[SolutionResult], ks: Iterable[int] = DEFAULT_KS) -> dict[str, Any]:
    """pass@k over problems, passed/total, failures by verdict."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failures: Counter[str] = Counter()
    for result in results:
        counts[result.problem_id][0] += 1
        counts[result.problem_id][1] += result.passed
        if not result.passed:
            failures[result.verdict] += 1
    pairs = [(n, c) for n, c in counts.values()]
    return {
        "problems": len(pairs),
        "solutions": sum(n for n, _ in pairs),
        "passed": sum(c for _, c in pairs),
        "pass@k": {str(k): v for k, v in pass_at_ks(pairs, {1, *ks}).items()},
        "failures": dict(sorted(failures.items())),
    }
