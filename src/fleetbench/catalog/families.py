"""Model families and how each switches reasoning on or off.

The family decides the *mechanism* (a chat-template kwarg, a prompt prefix, a system
prompt, or nothing); the catalogue's reasoning state decides *whether* to reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Mechanisms
KWARG_ENABLE_THINKING = "enable_thinking kwarg"
KWARG_REASONING_EFFORT = "reasoning_effort kwarg"
PREFIX_THINK = "<think> prefix"
ALWAYS_THINKS = "always thinks"
CANNOT_THINK = "cannot think"
HUNYUAN = "/think prefix or enable_thinking kwarg"
SYSTEM_NO_THINK = "/no_think system prompt"
NO_MECHANISM = "none"


@dataclass(frozen=True)
class Family:
    name: str
    pattern: str  # regex searched in the lower-cased model id
    mechanism: str


# Order matters: the first match wins, so specific families precede general ones.
FAMILIES: list[Family] = [
    Family("gpt-oss", r"gpt-oss", KWARG_REASONING_EFFORT),
    Family("qwen3-next-thinking", r"qwen3-next.*thinking", ALWAYS_THINKS),
    Family("qwen3-next-instruct", r"qwen3-next.*instruct", CANNOT_THINK),
    Family("qwen3", r"qwen3(?!-next)(?![.\d])", KWARG_ENABLE_THINKING),
    Family("smollm3", r"smollm3", KWARG_ENABLE_THINKING),
    Family("deepseek-r1-distill", r"deepseek-r1-distill", PREFIX_THINK),
    Family("deepseek-r1", r"deepseek-r1", PREFIX_THINK),
    Family("hunyuan", r"hunyuan", HUNYUAN),
    Family("exaone-4", r"exaone-4", KWARG_ENABLE_THINKING),
    Family("nemotron-super-v1.5", r"nemotron-super.*v1[._]5", SYSTEM_NO_THINK),
]
OTHER = Family("other", r"", NO_MECHANISM)
BY_NAME: dict[str, Family] = {f.name: f for f in [*FAMILIES, OTHER]}


def detect_family(model_id: str) -> Family:
    lowered = model_id.lower()
    for family in FAMILIES:
        if re.search(family.pattern, lowered):
            return family
    return OTHER


def family_names() -> list[str]:
    return list(BY_NAME)
