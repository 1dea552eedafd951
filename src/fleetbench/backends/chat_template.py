"""Render a model's own chat template (from its GGUF metadata) with extra kwargs.

Rendering it ourselves, rather than through a library's formatter, lets a catalogue
pass template kwargs such as ``enable_thinking`` or ``reasoning_effort`` unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from fleetbench.backends.base import Message

# Used when a GGUF carries no chat template of its own.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def cut_at_stop(text: str, stops: list[str]) -> str:
    """``text`` up to the first stop string (backends that stop after the fact)."""
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return text[:cut] if cut >= 0 else text


class ChatTemplate:
    def __init__(self, template: str, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self._template = env.from_string(template)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: list[Message], **kwargs: Any) -> str:
        return self._template.render(
            messages=[m.model_dump() for m in messages],
            add_generation_prompt=True,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            **kwargs,
        )


def _raise(message: str) -> None:
    raise ValueError(f"chat template: {message}")
