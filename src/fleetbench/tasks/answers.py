"""How one stored answer reads when runs are compared or combined.

``read_answer`` gives an answer's *key* (its normalised form: two answers with the same
key are the same answer), whether it is *blank*, and the confidence the model reported:

* ``wattbot``: the answer_value of the parsed JSON answer, normalised by the WattBot
  scorer's own ``normalise`` (so ``about 1,200`` and ``1200`` agree); blank by the
  scorer's blank rules (``is_blank``, ``NA``, ``n/a``, empty, "unable to answer ...");
  confidence is the answer's self-reported ``confidence`` field (0..1 or a percentage).
* ``custom``: the scorer's normalisation: the extracted number (``numeric``), the chosen
  letter (``multiple_choice``), else the answer with whitespace collapsed, wrapping
  quotes and a final period dropped, lower-cased unless ``case_sensitive``.
* ``humaneval``: the answer with all whitespace collapsed.
* other tasks: the answer normalised as for ``custom`` ``exact``.

A failed generation, an unparsable WattBot answer or an empty one has no key: it is not an
answer at all (it never wins a vote) and counts as blank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetbench.scoring import simple
from fleetbench.scoring.wattbot import BLANK, normalise
from fleetbench.tasks.answer_json import parse
from fleetbench.tasks.base import Sample


@dataclass(frozen=True)
class Answer:
    key: str | None  # None: no usable answer (failed, unparsable or empty)
    blank: bool
    confidence: float | None = None


NO_ANSWER = Answer(key=None, blank=True)


def read_answer(task: Any, sample: Sample, text: str, error: str | None) -> Answer:
    """``task`` is the task object that built ``sample``; ``text`` the visible answer."""
    if error is not None:
        return NO_ANSWER
    name = getattr(task, "name", "")
    if name == "wattbot":
        return _wattbot(sample, text)
    if name == "custom":
        key = _custom_key(task, sample, text)
    elif name == "humaneval":
        key = " ".join(text.split())
    else:
        key = simple.normalize(text)
    return Answer(key=key, blank=False) if key else NO_ANSWER


def _wattbot(sample: Sample, text: str) -> Answer:
    from fleetbench.tasks.wattbot import parsed_row

    parsed = parse(text)
    row, parse_error = parsed_row(sample.id, parsed, text)
    if parse_error is not None:
        return NO_ANSWER
    key = normalise(row["answer_value"])
    return Answer(key=key, blank=key == BLANK, confidence=parsed.confidence)


def _custom_key(task: Any, sample: Sample, text: str) -> str | None:
    from fleetbench.tasks.custom import judge

    options = task.options
    if options.scorer in ("numeric", "multiple_choice", "exact"):
        return judge(options, sample, text).prediction
    return simple.normalize(text, options.case_sensitive)


def task_of_run(task_name: str, config: dict[str, Any]) -> Any:
    """The task object a stored run used, rebuilt from its recorded options."""
    from fleetbench.tasks import get_task_class

    cls = get_task_class(task_name)
    return cls(cls.Options.model_validate(config.get("task_options") or {}))
