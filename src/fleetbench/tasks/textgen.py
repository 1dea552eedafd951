"""``textgen``: plain prompts for speed and energy measurement; no quality score."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.tasks.base import Sample, Task, chat_messages
from fleetbench.tasks.datasets import Row, load_rows, row_category

BUILTIN_PROMPTS = "textgen_prompts.jsonl"


class TextGenOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts_file: str | None = Field(
        None,
        description="prompt set: a JSONL/CSV/TSV/JSON/Parquet file, package:PKG/PATH or "
        "hf://ORG/NAME[:split]; default: the ~20 built-in prompts",
    )
    prompt_field: str = Field("prompt", description="column/field holding the prompt text")
    id_field: str = Field("id", description="column/field with a sample id (optional)")
    category_field: str = Field(
        "category", description="column/field with the prompt's category (optional)"
    )
    n_prompts: int | None = Field(
        None, ge=1, description="use the first N prompts (default: all of them)"
    )
    system_prompt: str | None = None
    token_protocol: Literal["ai_energy_score", "none"] = Field(
        "ai_energy_score",
        description="default token budget: AI Energy Score generates exactly 10 tokens "
        "without reasoning and up to 8,192 with it; 'none' keeps the plan's settings",
    )


class TextGenTask(Task):
    name: ClassVar[str] = "textgen"
    Options: ClassVar[type[BaseModel]] = TextGenOptions

    def __init__(self, options: TextGenOptions) -> None:
        self.options = options

    @staticmethod
    def generation_defaults(options: TextGenOptions, reasoning: bool) -> dict[str, int]:
        """The AI Energy Score token protocol; the plan's generation settings override it."""
        if options.token_protocol == "none":
            return {}
        if reasoning:
            return {"max_tokens": 8192, "min_tokens": 1}
        return {"max_tokens": 10, "min_tokens": 10}

    def samples(self) -> list[Sample]:
        source = self.options.prompts_file or f"package:fleetbench.tasks.data/{BUILTIN_PROMPTS}"
        rows = load_rows(source)
        if self.options.n_prompts is not None:
            rows = rows[: self.options.n_prompts]
        field, id_field = self.options.prompt_field, self.options.id_field
        samples: list[Sample] = []
        for row in rows:
            prompt = row.data.get(field)
            if not isinstance(prompt, str) or not prompt.strip():
                raise row.error(field, "must be a non-empty string")
            sample_id = row.data.get(id_field)
            index = len(samples)
            samples.append(
                Sample(
                    index=index,
                    id=str(index if sample_id in (None, "") else sample_id),
                    prompt=prompt,
                    metadata=_category(row, self.options.category_field),
                )
            )
        if not samples:
            raise ConfigError(f"{source}: no prompts found")
        return samples

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        return chat_messages(sample.prompt, self.options.system_prompt or system_prompt)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, float] | None:
        return None


def _category(row: Row, field: str) -> dict[str, str]:
    category = row_category(row, field)
    return {} if category is None else {"category": category}
