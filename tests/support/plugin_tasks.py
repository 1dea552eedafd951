"""Task plugins, importable by the CLI and its workers (tests put this folder on
``PYTHONPATH``): a plan names them as ``plugin_tasks:EchoTask``, exactly as a third
party's task would be named. Nothing here is faked: the tasks run on the real model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.tasks import Answer, Sample, Task, chat_messages


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(default_factory=lambda: ["apple", "river", "stone", "cloud"])


class EchoTask(Task):
    """Ask the model to repeat a word; it scores whether the word came back. Every
    optional hook is defined, so a run shows each of them at work."""

    name: ClassVar[str] = "echo"
    Options: ClassVar[type[BaseModel]] = EchoOptions
    primary_metric: ClassVar[str] = "echo_rate"

    def __init__(self, options: EchoOptions) -> None:
        self.options = options

    @staticmethod
    def generation_defaults(options: EchoOptions, reasoning: bool) -> dict[str, int]:
        return {"max_tokens": 6}

    def samples(self) -> list[Sample]:
        return [
            Sample(index=i, id=f"w{i}", prompt=f"Repeat this word exactly once: {word}",
                   reference=word)
            for i, word in enumerate(self.options.words)
        ]  # fmt: skip

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        return chat_messages(sample.prompt, system_prompt)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any]:
        echoed = result.ok and str(sample.reference) in result.text.lower()
        return {"echoed": int(echoed)}

    @staticmethod
    def aggregate_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
        """Echoes over every planned sample (a missing one did not echo)."""
        if not scores:
            return {}
        echoed = sum(int((s or {}).get("echoed", 0)) for s in scores)
        return {"echo_rate": echoed / len(scores), "echoed": float(echoed)}

    @staticmethod
    def run_files(records: list[dict[str, Any]]) -> dict[str, str]:
        lines = [f"{r['sample_id']}\t{(r['scores'] or {}).get('echoed')}\n" for r in records]
        return {"echoes.tsv": "".join(lines)}

    def read_answer(self, sample: Sample, text: str) -> Answer:
        """Two answers agree when they echoed (or missed) the same way."""
        return Answer(key="echoed" if str(sample.reference) in text.lower() else "missed",
                      blank=False)  # fmt: skip


class BareTask:
    """A plugin that does not subclass ``Task``: only the required members."""

    name: ClassVar[str] = "bare"
    Options: ClassVar[type[BaseModel]] = EchoOptions

    def __init__(self, options: EchoOptions) -> None:
        self.options = options

    def samples(self) -> list[Sample]:
        return [Sample(index=0, id="only", prompt="Say yes.")]

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        return chat_messages(sample.prompt, system_prompt)

    def score(self, sample: Sample, result: GenerationResult) -> None:
        return None


class NoScoreTask:
    """Not a task: it lacks ``score``."""

    name: ClassVar[str] = "noscore"
    Options: ClassVar[type[BaseModel]] = EchoOptions

    def samples(self) -> list[Sample]:
        return []

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        return []


PLUGIN_CONSTANT = "not a class"
