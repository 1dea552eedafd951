"""Resolve a catalogue row's reasoning into exact generation settings.

Inputs: the family, the ``Reasoning State`` (authoritative: whether to reason) and the
free-text ``Chat Template`` (explicit mechanisms and parameters: YAML fragments such
as ``reasoning_params: {reasoning_effort: high}``, ``enable_thinking=False``, or prose
such as "Prepend input with <think>"). Contradictions follow the state, use the
family's mechanism and leave a warning on the entry.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml

from fleetbench.catalog import families as fam
from fleetbench.errors import ConfigError
from fleetbench.safeparse import load_yaml

EFFORTS = ("low", "medium", "high")
_STATE = re.compile(r"^(on|off)\s*(?:\((.*)\))?$", re.IGNORECASE)
_KWARG = re.compile(r"\b(enable_thinking|reasoning)\s*[=:]\s*(true|false)\b", re.IGNORECASE)
_EFFORT = re.compile(r"reasoning_effort\s*[=:]\s*(low|medium|high)\b", re.IGNORECASE)
_NEEDS_SWITCH = {fam.KWARG_ENABLE_THINKING, fam.PREFIX_THINK, fam.HUNYUAN}
_NOT_GIVEN = {"", "n/a", "n/a (default)", "na", "none", "default"}


@dataclass
class ParsedState:
    reasoning: bool | None  # None: no state given (e.g. image rows)
    effort: str | None


@dataclass
class TemplateHints:
    """What the Chat Template text says explicitly."""

    thinking: bool | None = None  # enable_thinking / reasoning: True|False
    effort: str | None = None
    prefix: str | None = None
    system_prompt: str | None = None
    note: str | None = None


@dataclass
class Resolution:
    reasoning: bool
    reasoning_effort: str | None = None
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    prompt_prefix: str = ""
    warnings: list[str] = field(default_factory=list)


def parse_state(text: str) -> ParsedState:
    """``On``, ``Off``, ``On (High)``, ``Off (N/A)``, or empty. ConfigError otherwise."""
    cleaned = text.strip()
    if not cleaned:
        return ParsedState(None, None)
    match = _STATE.match(cleaned)
    if not match:
        raise ConfigError(
            f"invalid reasoning state {text!r}; valid: On, Off, On (Low|Medium|High), Off (N/A)"
        )
    on = match.group(1).lower() == "on"
    detail = (match.group(2) or "").strip().lower()
    effort = detail if detail in EFFORTS else None
    if detail and effort is None and detail != "n/a":
        raise ConfigError(f"invalid reasoning state {text!r}: unknown detail {detail!r}")
    if effort and not on:
        raise ConfigError(f"invalid reasoning state {text!r}: an effort needs On")
    return ParsedState(on, effort)


def parse_template_text(text: str) -> TemplateHints:
    """Read explicit mechanisms out of the free-text Chat Template column."""
    cleaned = text.strip()
    hints = TemplateHints()
    if cleaned.lower() in _NOT_GIVEN:
        return hints
    data = _yaml_fragment(text)
    if isinstance(data, dict):
        _from_mapping(data, hints)
    else:
        if m := _KWARG.search(cleaned):
            hints.thinking = m.group(2).lower() == "true"
        if m := _EFFORT.search(cleaned):
            hints.effort = m.group(1).lower()
    lowered = cleaned.lower()
    if "prepend input with <think>" in lowered:
        hints.prefix = "<think>"
    elif "/think before the prompt" in lowered:
        hints.prefix = "/think"
    if "/no_think in the system prompt" in lowered:
        hints.system_prompt = "/no_think"
    if hints == TemplateHints():
        hints.note = cleaned
    return hints


def _yaml_fragment(text: str) -> Any:
    """A YAML mapping if the text is one (indented fragments included); else None."""
    body = textwrap.dedent(text.replace("\t", "    ")).strip()
    if ":" not in body or "=" in body:
        return None
    looks_like_yaml = bool(re.match(r"^[A-Za-z_][\w-]*\s*:(\s|$)", body))
    try:
        data = load_yaml(body)
    except yaml.YAMLError as exc:
        if looks_like_yaml:
            mark = getattr(exc, "problem_mark", None)
            where = f" at fragment line {mark.line + 1}" if mark else ""
            raise ConfigError(f"unparsable YAML fragment{where}: {body!r}") from None
        return None
    return data if isinstance(data, dict) else None


def _from_mapping(data: dict[str, Any], hints: TemplateHints) -> None:
    for key in ("reasoning", "enable_thinking", "thinking"):
        if isinstance(data.get(key), bool):
            hints.thinking = data[key]
    params = data.get("reasoning_params")
    effort = data.get("reasoning_effort")
    if isinstance(params, dict):
        effort = params.get("reasoning_effort", effort)
    if effort is not None:
        if str(effort).lower() not in EFFORTS:
            raise ConfigError(f"invalid reasoning_effort {effort!r}; valid: {', '.join(EFFORTS)}")
        hints.effort = str(effort).lower()


def resolve(family: fam.Family, state: ParsedState, hints: TemplateHints) -> Resolution:
    """Apply the family's mechanism for the state; warn where the text disagrees."""
    want = bool(state.reasoning) if state.reasoning is not None else bool(hints.thinking)
    out = Resolution(reasoning=want)
    if hints.thinking is not None and state.reasoning is not None and hints.thinking != want:
        out.warnings.append(
            f"Chat Template says thinking={hints.thinking} but Reasoning State is "
            f"{'On' if want else 'Off'}: following the state ({family.name} uses "
            f"{family.mechanism})"
        )
    mechanism = family.mechanism
    silent = hints.thinking is None and hints.prefix is None and hints.effort is None
    if want and silent and mechanism in _NEEDS_SWITCH:
        out.warnings.append(
            f"Reasoning State is On but the Chat Template names no mechanism: using "
            f"{family.name}'s ({mechanism})"
        )
    if mechanism == fam.KWARG_ENABLE_THINKING:
        out.chat_template_kwargs["enable_thinking"] = want
    elif mechanism == fam.KWARG_REASONING_EFFORT:
        _gpt_oss(out, want, state.effort or hints.effort)
    elif mechanism == fam.PREFIX_THINK:
        _deepseek(out, family, want, hints)
    elif mechanism == fam.HUNYUAN:
        if want:
            out.prompt_prefix = "/think"
        else:
            out.chat_template_kwargs["enable_thinking"] = False
    elif mechanism == fam.SYSTEM_NO_THINK:
        if not want:
            out.system_prompt = "/no_think"
    elif mechanism == fam.ALWAYS_THINKS:
        if not want:
            out.warnings.append(f"{family.name} always thinks; it cannot run without reasoning")
            out.reasoning = True
    elif mechanism == fam.CANNOT_THINK:
        if want:
            out.warnings.append(
                f"{family.name} cannot think; it runs without reasoning despite the state"
            )
            out.reasoning = False
    else:
        _no_mechanism(out, family, state, hints)
    return out


def _gpt_oss(out: Resolution, want: bool, effort: str | None) -> None:
    if want:
        out.reasoning_effort = effort or "medium"
        out.chat_template_kwargs["reasoning_effort"] = out.reasoning_effort
        if effort is None:
            out.warnings.append("no reasoning effort given for gpt-oss: using medium")
    else:
        out.warnings.append(
            "gpt-oss cannot fully disable reasoning: Off passes no reasoning_effort "
            "(the model's default, medium, applies)"
        )


def _deepseek(out: Resolution, family: fam.Family, want: bool, hints: TemplateHints) -> None:
    if not want:
        if family.name == "deepseek-r1-distill":
            out.warnings.append("DeepSeek-R1 distills cannot disable reasoning; defaults apply")
        return
    # An explicit, consistent enable_thinking=True in the text is used as given (R1-0528);
    # the distills' templates know no such kwarg, so they always get the prefix.
    if hints.thinking is True and family.name == "deepseek-r1":
        out.chat_template_kwargs["enable_thinking"] = True
    else:
        out.prompt_prefix = hints.prefix or "<think>"


def _no_mechanism(
    out: Resolution, family: fam.Family, state: ParsedState, hints: TemplateHints
) -> None:
    if hints.prefix:
        out.prompt_prefix = hints.prefix
    if hints.system_prompt:
        out.system_prompt = hints.system_prompt
    if state.reasoning is True and not (hints.prefix or hints.system_prompt):
        out.warnings.append(
            "Reasoning State is On but this family has no known reasoning switch: "
            "the model runs with its defaults"
        )
