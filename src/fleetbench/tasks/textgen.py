"""``textgen``: plain prompts for speed and energy measurement; no quality score."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.tasks.base import Sample, chat_messages

BUILTIN_PROMPTS = "textgen_prompts.jsonl"


class TextGenOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts_file: Path | None = Field(
        None,
        description="JSONL with a 'prompt' field per line (and optional 'id'); "
        "default: the ~20 built-in prompts",
    )
    system_prompt: str | None = None
    token_protocol: Literal["ai_energy_score", "none"] = Field(
        "ai_energy_score",
        description="default token budget: AI Energy Score generates exactly 10 tokens "
        "without reasoning and up to 8,192 with it; 'none' keeps the plan's settings",
    )


class TextGenTask:
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
        if self.options.prompts_file is None:
            text = resources.files("fleetbench.tasks.data").joinpath(BUILTIN_PROMPTS).read_text()
            origin = f"built-in {BUILTIN_PROMPTS}"
        else:
            path = self.options.prompts_file
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read prompts file: {exc.strerror}") from None
            origin = str(path)
        return _parse_prompts(text, origin)

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        return chat_messages(sample.prompt, self.options.system_prompt or system_prompt)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, float] | None:
        return None


def _parse_prompts(text: str, origin: str) -> list[Sample]:
    samples: list[Sample] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{origin}:{lineno}: invalid JSON ({exc.msg})") from None
        prompt = row.get("prompt") if isinstance(row, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError(f"{origin}:{lineno}: field 'prompt' must be a non-empty string")
        index = len(samples)
        samples.append(Sample(index=index, id=str(row.get("id", index)), prompt=prompt))
    if not samples:
        raise ConfigError(f"{origin}: no prompts found")
    return samples
