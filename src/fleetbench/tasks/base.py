"""The task interface: samples, prompt building, scoring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.scoring import simple


class Sample(BaseModel):
    """One input of a task; ``index`` is its stable position, ``id`` its name in the dataset."""

    model_config = ConfigDict(extra="forbid")

    index: int
    id: str
    prompt: str
    reference: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """How one stored answer reads when runs are combined (``fleetbench ensemble``):
    two answers with the same ``key`` are the same answer."""

    key: str | None  # None: no usable answer (failed, unparsable or empty)
    blank: bool  # an abstention ("is_blank"); also True when there is no key
    confidence: float | None = None  # self-reported by the model, 0..1


NO_ANSWER = Answer(key=None, blank=True)


class ChatFn(Protocol):
    """One model call of a multi-turn task: the whole conversation so far in, the reply
    out. ``tools`` (OpenAI function schemas) are offered to the model when the backend
    can send them; the reply's ``tool_calls`` then carry its calls. The worker's chat
    also has ``tool_support`` (a ``ToolSupport``: what the backend's ``tool_calling``
    hook says); read it with ``getattr(chat, "tool_support", "unavailable")``."""

    def __call__(
        self, messages: list[Message], tools: list[dict[str, Any]] | None = None, /
    ) -> GenerationResult: ...


@dataclass(frozen=True)
class Interaction:
    """How a multi-turn sample (``Task.interact``) went: ``result`` sums its turns
    (tokens, model latency; ``text`` is the last reply, ``error`` a backend failure that
    ended it), ``messages`` is the whole conversation (every reply included) and
    ``scores`` the sample's metrics, stored like ``Task.score``'s."""

    result: GenerationResult
    messages: list[Message]
    scores: dict[str, Any] | None


class Task(Protocol):
    """A task turns its options into samples and messages, and scores results.

    Built-in tasks subclass ``Task`` to inherit its default hooks; a plugin may too, or
    just define the methods (see ``fleetbench.plugins`` for how a plan names one). The
    constructor is ``Task(options)``, ``options`` an instance of ``Options`` validated
    from the plan's ``tasks[].options``.

    Optional, looked up with ``getattr`` so that plugins need not define them:

    * ``primary_metric: ClassVar[str]``: the run-level metric shown as the run's
      ``quality_score`` (default: none).
    * ``aggregate_scores(scores: list[dict | None]) -> dict[str, float]`` (static): the
      run's metrics from its samples' scores (``None`` for a sample that failed or was
      never reached); default ``mean_scores``.
    * ``run_files(records: list[dict]) -> dict[str, str]`` (static): extra files for the
      run folder (e.g. a Kaggle ``submission.csv``) from the stored sample records (the
      lines of ``results.jsonl``).
    * ``generation_defaults(options, reasoning: bool) -> dict[str, Any]`` (static): the
      task's own generation settings (e.g. the AI Energy Score token protocol), given
      the validated options and whether the model reasons; the plan's ``generation``
      settings override them. Default: none.
    * ``retrieval_corpus(options: dict) -> str`` (static): what the model was given to
      read (``closed-book``, ``oracle_passages``, a corpus folder), from a run's
      recorded options, for the ``retrieval_corpus`` column. Default: ``""``.
    * ``read_answer(sample, text) -> Answer``: defined below with its default.
    * ``interact(sample, messages, chat: ChatFn) -> Interaction``: a multi-turn task
      (an agent loop): the worker calls it instead of generating once, and ``chat``
      sends one conversation to the model and returns its reply. The task sums the
      turns into the ``Interaction``'s result and scores it itself (``score`` is not
      called). Without it a sample is one request and one reply.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: Any) -> None: ...

    def samples(self) -> list[Sample]: ...

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]: ...

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any] | None:
        """Quality metrics for one sample (numbers are averaged per run by default;
        other JSON values are kept with the sample), or None for tasks without a score.
        Called for failed samples too: a task decides how an error scores."""
        ...

    def read_answer(self, sample: Sample, text: str) -> Answer:
        """How the visible answer ``text`` to ``sample`` reads for comparison: its key
        (normalised form), whether it is blank, the confidence the model reported.
        Called for successful generations only (a failed one has ``NO_ANSWER``).

        Default: the answer with whitespace collapsed, wrapping quotes and a final
        period dropped, lower-cased; an empty answer is ``NO_ANSWER``.
        """
        return plain_answer(text)


def plain_answer(text: str, case_sensitive: bool = False) -> Answer:
    """``Task.read_answer``'s default reading, for tasks that want it for some answers."""
    key = simple.normalize(text, case_sensitive)
    return Answer(key=key, blank=False) if key else NO_ANSWER


def mean_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
    """Mean of every numeric metric over the samples that have it."""
    sums: dict[str, list[float]] = {}
    for score in scores:
        for key, value in (score or {}).items():
            if isinstance(value, bool | int | float) and not (
                isinstance(value, float) and math.isnan(value)
            ):
                sums.setdefault(key, []).append(float(value))
    return {key: sum(values) / len(values) for key, values in sums.items()}


def chat_messages(prompt: str, system_prompt: str | None) -> list[Message]:
    """The plain chat shape most tasks use: optional system message, one user turn."""
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    messages.append(Message(role="user", content=prompt))
    return messages


def apply_affixes(messages: list[Message], prefix: str, suffix: str) -> list[Message]:
    """Wrap the last user turn in a model's prompt prefix/suffix (e.g. ``/think``).

    A prefix is joined to the content with one space unless it already ends in
    whitespace (``"<think>\\n"`` stays as written); a suffix likewise unless it starts
    with whitespace. Other turns and the input list are left untouched.
    """
    if not (prefix or suffix):
        return messages
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            content = _join_affix(prefix, messages[i].content, at_end=False)
            content = _join_affix(suffix, content, at_end=True)
            out = list(messages)
            out[i] = messages[i].model_copy(update={"content": content})
            return out
    return messages


def _join_affix(affix: str, content: str, at_end: bool) -> str:
    if not affix:
        return content
    if at_end:
        return content + ("" if affix[0].isspace() else " ") + affix
    return affix + ("" if affix[-1].isspace() else " ") + content
