"""A model entry: what to run and how. Loaded from a plan (inline) or, later, a catalogue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelSpec(BaseModel):
    """One model of the fleet.

    ``options`` belong to the backend and are validated by its ``Options`` model when
    the plan is loaded, so a typo there is reported with the plan's file and line.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="display name; also used by --model filters")
    backend: str = "llamacpp"
    model_class: str = Field("", description="size class, e.g. AI Energy Score's A/B/C")
    reasoning_state: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    generation: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the plan's generation settings"
    )
    system_prompt: str | None = None
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
