"""Robust parsing of a model's JSON answer (WattBot: answer_value, answer_unit, ref_id, ...).

Small models wrap the object in code fences or prose, use single quotes or Python
literals, leave trailing commas, or stop mid-object at the token limit. ``parse`` tries, in
order: every ``{...}`` object in the text (fenced blocks first) as JSON, then with trailing
commas dropped, then as a Python literal (single quotes, True/None); an object cut off at the
end is closed. Without any ``{`` a short single line is taken as a bare answer value.
Anything else is a parse error: the caller scores it as a wrong answer and keeps the text.
An optional ``confidence`` (0..1 or a percentage) is kept for ``fleetbench ensemble``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)(?:```|\Z)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
BARE_MAX_CHARS = 100

_KEYS = {
    "answer_value": ("answer_value", "value", "answer"),
    "answer_unit": ("answer_unit", "unit", "units"),
    "ref_id": ("ref_id", "ref_ids", "refs", "references", "reference", "doc_id", "doc_ids"),
    "explanation": ("explanation", "reason", "reasoning", "justification"),
    "confidence": ("confidence", "confidence_score", "certainty"),
}


@dataclass(frozen=True)
class ParsedAnswer:
    """The answer's fields as text (``ref_ids`` a list); ``error`` set when unparsable."""

    answer_value: str = ""
    answer_unit: str = ""
    ref_ids: list[str] = field(default_factory=list)
    explanation: str = ""
    confidence: float | None = None  # self-reported, in [0, 1]; None when absent or invalid
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse(text: str) -> ParsedAnswer:
    """The answer object in ``text`` (see the module docstring for what is accepted)."""
    body = _strip_reasoning(text).strip()
    if not body:
        return ParsedAnswer(error="empty output")
    candidates = [m.group(1) for m in _FENCE.finditer(body)] + [body]
    for candidate in candidates:
        for obj_text in _objects(candidate):
            obj = _load(obj_text)
            if isinstance(obj, dict):
                return _from_dict(obj)
    if "{" not in body:
        return _bare(_FENCE.sub(lambda m: m.group(1), body).strip())
    return ParsedAnswer(error="no parsable JSON object")


def _strip_reasoning(text: str) -> str:
    """The text without ``<think>`` reasoning, wherever it is.

    Not ``scoring.response.split_response``, on purpose: on realistic outputs (one block,
    a template-opened block, quoted tags, a cut-off thought) both give the same answer
    (``tests/unit/test_answer_json.py`` checks it), but this drops *every* closed block
    and everything before the *last* stray ``</think>``, so a second block after the
    answer (``<think>a</think>ok <think>{...}</think>{answer}``) never lends its object.
    ``parse`` is handed the already split answer (the worker stores and scores
    ``split_response(output).answer``), so this only matters for such odd leftovers.
    """
    text = _THINK.sub("", text)
    if "</think>" in text:  # the template opened the block: drop all up to its end
        text = text.rsplit("</think>", 1)[1]
    elif text.lstrip().startswith("<think>"):  # cut off mid-thought: no answer
        return ""
    return text


def _objects(text: str) -> list[str]:
    """Each balanced ``{...}`` from every ``{`` (strings respected), plus a cut-off tail."""
    found: list[str] = []
    start = text.find("{")
    while start != -1:
        end = _balanced_end(text, start)
        if end != -1:
            found.append(text[start:end])
        else:  # cut off: close it as is, else drop the unfinished last member
            tail = text[start:]
            found.append(_close(tail))
            if "," in tail:
                found.append(_close(tail[: tail.rfind(",")]))
        start = text.find("{", start + 1)
    return found


def _balanced_end(text: str, start: int) -> int:
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            # an apostrophe inside a word ("model's") does not open a string
            if ch == '"' or not (i > 0 and text[i - 1].isalnum()):
                quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _close(tail: str) -> str:
    """Close an object cut off by the token limit: an open string, lists, braces."""
    depth_stack: list[str] = []
    quote, escaped = "", False
    for ch in tail:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth_stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and depth_stack:
            depth_stack.pop()
    closed = tail.rstrip().rstrip(",:") + quote
    return closed + "".join(reversed(depth_stack))


def _load(obj_text: str) -> Any:
    for attempt in (obj_text, _TRAILING_COMMA.sub(r"\1", obj_text)):
        try:
            return json.loads(attempt)
        except ValueError:
            pass
        try:
            pythonish = re.sub(r"\btrue\b", "True", attempt)
            pythonish = re.sub(r"\bfalse\b", "False", pythonish)
            pythonish = re.sub(r"\bnull\b", "None", pythonish)
            return ast.literal_eval(pythonish)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    return None


def _field(obj: dict[Any, Any], name: str) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in _KEYS[name]:
        if key in lowered:
            return lowered[key]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, list | tuple | set):
        return json.dumps([v if isinstance(v, int | float | str) else str(v) for v in value])
    return str(value).strip()


def _ref_ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple | set) else [value]
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if text.startswith("["):  # a list written as a string
            loaded = _load(text)
            out.extend(_ref_ids(loaded) if isinstance(loaded, list) else [text.strip("[]")])
        else:
            out.extend(p.strip().strip("'\"") for p in text.split(","))
    return [r for r in out if r]


def _from_dict(obj: dict[Any, Any]) -> ParsedAnswer:
    value = _field(obj, "answer_value")
    if value is None:
        return ParsedAnswer(error="JSON object has no answer_value")
    return ParsedAnswer(
        answer_value=_text(value),
        answer_unit=_text(_field(obj, "answer_unit")),
        ref_ids=_ref_ids(_field(obj, "ref_id")),
        explanation=_text(_field(obj, "explanation")),
        confidence=_confidence(_field(obj, "confidence")),
    )


def _confidence(value: Any) -> float | None:
    """A self-reported confidence: 0..1, or a percentage (``85``, ``"85%"``) scaled to it."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        number = float(text.rstrip("%").strip())
    except ValueError:
        return None
    if percent or 1.0 < number <= 100.0:
        number /= 100.0
    return number if 0.0 <= number <= 1.0 else None


def _bare(body: str) -> ParsedAnswer:
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) != 1 or len(lines[0].strip()) > BARE_MAX_CHARS:
        return ParsedAnswer(error="no JSON object and not a bare value")
    value = lines[0].strip().strip("`").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()
    return ParsedAnswer(answer_value=value) if value else ParsedAnswer(error="empty output")
