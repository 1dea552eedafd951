"""``code_io``: write whole programs for stdin/stdout problems, judged test by test.

The problems file is in ``fleetbench.scoring.code_io``'s format; the model sees the
problem's ``statement`` (or, without one, its first test as an example) and answers with
a program in one code block. Each of ``n_samples`` samples per problem is a ``Sample``
(``metadata.seed_offset`` varies the seed). Scores are per-sample verdicts, the run's
pass@k over problems. Each run writes ``solutions.jsonl`` in the solutions format
(``problem_id``, ``code``, ``language``): a checkpoint sweep's run folders can then be
scored again, or with another checker, by ``fleetbench score code``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.sandbox.checkers import Checker, make_checker
from fleetbench.scoring.code_extract import program_from_reply
from fleetbench.scoring.code_io import (
    IOProblem,
    IOSolution,
    SolutionResult,
    load_io_problems,
    run_solution,
)
from fleetbench.scoring.passk import run_pass_at_k
from fleetbench.tasks.base import NO_ANSWER, Answer, Sample, Task, chat_messages

SOLUTIONS_FILE = "solutions.jsonl"
INSTRUCTION = (
    "Solve the following programming problem in {language}. The program reads its input "
    "from standard input and writes the answer to standard output. Reply with the "
    "complete program in one ```{language} code block.\n\n{statement}"
)


class CodeIOOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problems_file: Path = Field(description="problems JSONL: problem_id, tests, statement")
    problem_ids: list[str] | None = Field(None, description="only these problems")
    n_samples: int = Field(1, ge=1, le=1000, description="samples per problem (pass@k)")
    language: str = Field("python", min_length=1, description="the language asked for")
    checker: Literal["local", "piston"] = "local"
    endpoint: str | None = Field(None, description="Piston URL (checker: piston)")
    system_prompt: str | None = None


def prompt_for(problem: IOProblem) -> str:
    if problem.statement.strip():
        return problem.statement
    test = problem.tests[0]
    return f"Example input:\n```\n{test.input}```\nExpected output:\n```\n{test.output}\n```"


class CodeIOTask(Task):
    name: ClassVar[str] = "code_io"
    Options: ClassVar[type[BaseModel]] = CodeIOOptions
    primary_metric: ClassVar[str] = "pass@1"

    def __init__(self, options: CodeIOOptions) -> None:
        self.options = options
        self._problems: dict[str, IOProblem] | None = None
        self._checker: Checker | None = None

    @staticmethod
    def generation_defaults(options: CodeIOOptions, reasoning: bool) -> dict[str, int]:
        return {"max_tokens": 512, "min_tokens": 0}

    @property
    def problems(self) -> dict[str, IOProblem]:
        if self._problems is None:
            problems = load_io_problems(self.options.problems_file)
            if self.options.problem_ids is not None:
                unknown = [p for p in self.options.problem_ids if p not in problems]
                if unknown:
                    raise ConfigError(f"problem_ids: unknown problem {unknown[0]!r}; valid: "
                                      f"{', '.join(list(problems)[:10])}")  # fmt: skip
                problems = {p: problems[p] for p in dict.fromkeys(self.options.problem_ids)}
            if not problems:
                raise ConfigError("problem_ids: no problems selected")
            self._problems = problems
        return self._problems

    @property
    def checker(self) -> Checker:
        if self._checker is None:
            checker = make_checker(self.options.checker, self.options.endpoint)
            checker.validate({self.options.language.lower()})
            self._checker = checker
        return self._checker

    def samples(self) -> list[Sample]:
        self.checker  # noqa: B018 - a checker that cannot run the language fails before work
        n = self.options.n_samples
        out: list[Sample] = []
        for problem_id, problem in self.problems.items():
            for j in range(n):
                out.append(Sample(
                    index=len(out), id=problem_id if n == 1 else f"{problem_id}#{j}",
                    prompt=prompt_for(problem), reference=problem_id,
                    metadata={"problem_id": problem_id, "sample": j, "seed_offset": j},
                ))  # fmt: skip
        return out

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        text = INSTRUCTION.format(language=self.options.language, statement=sample.prompt)
        return chat_messages(text, self.options.system_prompt or system_prompt)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any]:
        problem_id = str(sample.metadata["problem_id"])
        if result.error:
            return {"passed": 0, "verdict": "error", "reason": "no program (generation failed)",
                    "problem_id": problem_id}  # fmt: skip
        solution = IOSolution(problem_id, program_from_reply(result.text), self.options.language)
        outcome: SolutionResult = run_solution(solution, self.problems[problem_id], self.checker)
        bad = next((t for t in outcome.tests if t.verdict != "accepted"), None)
        return {"passed": int(outcome.passed), "verdict": outcome.verdict,
                "reason": bad.detail if bad else "", "problem_id": problem_id,
                "tests_passed": sum(t.verdict == "accepted" for t in outcome.tests),
                "language": self.options.language}  # fmt: skip

    def read_answer(self, sample: Sample, text: str) -> Answer:
        key = " ".join(program_from_reply(text).split())
        return Answer(key=key, blank=False) if key else NO_ANSWER

    @staticmethod
    def aggregate_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
        """Unbiased pass@k over problems (samples never reached are left out)."""
        return run_pass_at_k(scores, "problem_id")

    @staticmethod
    def run_files(records: list[dict[str, Any]]) -> dict[str, str]:
        """``solutions.jsonl`` (problem_id, code, language): what ``score code`` reads."""
        lines = []
        for record in sorted(records, key=lambda r: int(r.get("sample_index") or 0)):
            scores = record.get("scores") or {}
            problem_id = scores.get("problem_id") or str(record.get("sample_id") or "")
            problem_id = problem_id.split("#")[0]
            if not problem_id:
                continue
            text = "" if record.get("error") else record.get("answer_text") or ""
            line = {"problem_id": problem_id, "code": program_from_reply(text) if text else "",
                    "language": scores.get("language") or "python"}  # fmt: skip
            lines.append(json.dumps(line) + "\n")
        return {SOLUTIONS_FILE: "".join(lines)} if lines else {}
