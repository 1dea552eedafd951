"""``custom``: the user's own question set (JSONL/CSV/Parquet, package file or hub) with a
simple scorer: exact, includes, regex, numeric (with tolerance) or multiple choice.

Rows have ``input`` and ``target``, optionally ``choices`` (a list; in CSV a JSON list
string) and ``id``. Each sample scores ``correct`` (0/1) and the ``prediction`` extracted
from the answer; the run's ``accuracy`` counts a failed sample as wrong.
"""

from __future__ import annotations

import json
import re
from string import Formatter
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.safeparse import loads_json
from fleetbench.scoring import simple
from fleetbench.tasks.base import NO_ANSWER, Answer, Sample, Task, plain_answer
from fleetbench.tasks.datasets import Row, load_rows, row_category

Scorer = Literal["exact", "includes", "regex", "numeric", "multiple_choice"]
DEFAULT_TEMPLATE = "{input}"
DEFAULT_MC_TEMPLATE = "{input}\n\n{choices}\n\nAnswer with the letter of the correct choice."
TEMPLATE_FIELDS = ("input", "choices")


class Tolerance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rel: float = Field(0.0, ge=0)
    abs: float = Field(0.0, ge=0)


class CustomOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(
        description="the dataset: a .jsonl/.json/.csv/.tsv/.parquet file, "
        "package:PKG/relative/path, or hf://ORG/NAME[:split]"
    )
    scorer: Scorer = "exact"
    tolerance: float | Tolerance = Field(
        1e-6,
        description="numeric scorer: a number (used as both relative and absolute "
        "tolerance) or {rel: .., abs: ..}; a prediction matches within either",
    )
    case_sensitive: bool = False
    system_prompt: str | None = None
    prompt_template: str | None = Field(
        None,
        description="Python format string with {input} and {choices} (the lettered "
        "choices); default '{input}', or for multiple choice the question, the choices "
        "and 'Answer with the letter of the correct choice.'",
    )
    category_field: str = Field(
        "category", description="column/field with the question's category (optional)"
    )
    few_shot: int = Field(0, ge=0, description="the first N rows are examples, not samples")
    few_shot_file: str | None = Field(
        None, description="examples from this file instead (all rows, or the first few_shot)"
    )


class CustomTask(Task):
    name: ClassVar[str] = "custom"
    Options: ClassVar[type[BaseModel]] = CustomOptions
    primary_metric: ClassVar[str] = "accuracy"

    def __init__(self, options: CustomOptions) -> None:
        self.options = options
        self.template = options.prompt_template or (
            DEFAULT_MC_TEMPLATE if options.scorer == "multiple_choice" else DEFAULT_TEMPLATE
        )
        _check_template(self.template)
        self._samples: list[Sample] | None = None
        self._examples: list[tuple[str, str]] = []

    def samples(self) -> list[Sample]:
        if self._samples is None:
            rows = [self._parse(row) for row in load_rows(self.options.file)]
            if self.options.few_shot_file:
                examples = [self._parse(r) for r in load_rows(self.options.few_shot_file)]
                examples = examples[: self.options.few_shot or None]
            else:
                examples, rows = rows[: self.options.few_shot], rows[self.options.few_shot :]
            if not rows:
                raise ConfigError(f"{self.options.file}: no rows left to evaluate"
                                  + (f" after {self.options.few_shot} few-shot examples"
                                     if self.options.few_shot else ""))  # fmt: skip
            self._examples = [(s.prompt, _example_answer(s)) for s in examples]
            self._samples = [s.model_copy(update={"index": i, "id": s.id or str(i)})
                             for i, s in enumerate(rows)]  # fmt: skip
        return self._samples

    def _parse(self, row: Row) -> Sample:
        data = row.data
        text = data.get("input")
        if not isinstance(text, str) or not text.strip():
            raise row.error("input", "must be a non-empty string")
        target = data.get("target")
        if target is None or (isinstance(target, str) and not target.strip()):
            raise row.error("target", "is required")
        if isinstance(target, bool | dict | list):
            raise row.error("target", "must be a string or a number")
        reference: Any = str(target).strip()
        choices = _choices(row)
        metadata: dict[str, Any] = {"where": row.where}
        category = row_category(row, self.options.category_field)
        if category is not None:
            metadata["category"] = category
        if self.options.scorer == "multiple_choice":
            if not choices:
                raise row.error("choices", "is required by the multiple_choice scorer")
            index = simple.choice_index(reference, choices, self.options.case_sensitive)
            if index is None:
                raise row.error("target", f"{reference!r} is neither a choice nor its letter "
                                f"(A-{simple.LETTERS[len(choices) - 1]})")  # fmt: skip
            metadata.update(choices=choices, target_index=index)
        elif self.options.scorer == "numeric":
            if simple.parse_number(reference) is None:
                raise row.error("target", f"{reference!r} is not a number (numeric scorer)")
        elif self.options.scorer == "regex":
            try:
                re.compile(reference)
            except re.error as exc:
                raise row.error("target", f"is not a valid regular expression: {exc}") from None
        prompt = self.template.format(input=text, choices=_render_choices(choices))
        raw_id = data.get("id")
        sample_id = str(raw_id).strip() if raw_id not in (None, "") else ""
        return Sample(index=0, id=sample_id, prompt=prompt, reference=reference, metadata=metadata)

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        system = self.options.system_prompt or system_prompt
        messages = [Message(role="system", content=system)] if system else []
        for prompt, answer in self._examples:
            messages.append(Message(role="user", content=prompt))
            messages.append(Message(role="assistant", content=answer))
        messages.append(Message(role="user", content=sample.prompt))
        return messages

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any]:
        if result.error:
            return {"correct": 0, "prediction": None}
        judged = judge(self.options, sample, result.text)
        return {"correct": int(judged.correct), "prediction": judged.prediction}

    def read_answer(self, sample: Sample, text: str) -> Answer:
        """The scorer's own reading: the extracted number (``numeric``), the chosen
        letter (``multiple_choice``) or the normalised answer (``exact``); for the other
        scorers the default reading, case kept if ``case_sensitive``."""
        if self.options.scorer in ("numeric", "multiple_choice", "exact"):
            key = judge(self.options, sample, text).prediction
            return Answer(key=key, blank=False) if key else NO_ANSWER
        return plain_answer(text, self.options.case_sensitive)

    @staticmethod
    def aggregate_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
        """Accuracy over every planned sample: a failed or missing one counts as wrong."""
        if not scores:
            return {}
        correct = sum(int(bool((s or {}).get("correct"))) for s in scores)
        return {"accuracy": correct / len(scores), "correct": float(correct)}


def judge(options: CustomOptions, sample: Sample, answer: str) -> simple.Judgement:
    """The configured scorer applied to one answer."""
    target = str(sample.reference)
    case = options.case_sensitive
    if options.scorer == "exact":
        return simple.exact(answer, target, case)
    if options.scorer == "includes":
        return simple.includes(answer, target, case)
    if options.scorer == "regex":
        return simple.regex(answer, target, case)
    if options.scorer == "numeric":
        tol = options.tolerance
        rel, abs_ = (tol.rel, tol.abs) if isinstance(tol, Tolerance) else (tol, tol)
        value = simple.parse_number(target)
        assert value is not None  # checked when the row was loaded
        return simple.numeric(answer, value, rel_tol=rel, abs_tol=abs_)
    choices = sample.metadata["choices"]
    return simple.multiple_choice(answer, sample.metadata["target_index"], choices, case)


def _choices(row: Row) -> list[str]:
    value = row.data.get("choices")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = loads_json(value)
        except json.JSONDecodeError:
            raise row.error("choices", 'must be a JSON list, e.g. ["red", "blue"]') from None
    if not isinstance(value, list) or not value or any(isinstance(v, dict | list) for v in value):
        raise row.error("choices", "must be a non-empty list of strings")
    if len(value) > len(simple.LETTERS):
        raise row.error("choices", f"has {len(value)} items; at most {len(simple.LETTERS)}")
    return [str(v) for v in value]


def _render_choices(choices: list[str]) -> str:
    return "\n".join(f"{simple.LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _example_answer(sample: Sample) -> str:
    if "target_index" in sample.metadata:
        i = sample.metadata["target_index"]
        return simple.LETTERS[i]
    return str(sample.reference)


def _check_template(template: str) -> None:
    try:
        fields = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"prompt_template: invalid format string ({exc})") from None
    unknown = sorted(f for f in fields if f not in TEMPLATE_FIELDS)
    if unknown:
        raise ConfigError(f"prompt_template: unknown field {{{unknown[0]}}}; "
                          "valid: {input}, {choices} (write {{ and }} for braces)")  # fmt: skip
    if "input" not in fields:
        raise ConfigError("prompt_template: must contain {input}")
