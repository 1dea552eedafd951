"""Scorers that compare a run's answers with reference answers (usable without a run).

The names below load on first use: every task imports ``fleetbench.scoring.simple``,
and a batch of text generation must not import the code sandbox and the HumanEval and
WattBot scorers before its first run starts (benchmarks/makespan.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetbench.scoring.code_extract import Extracted, build_program, extract_code
    from fleetbench.scoring.humaneval import (
        HumanEvalProblem,
        HumanEvalSample,
        HumanEvalScore,
        SampleResult,
        load_problems,
        read_samples,
        score_file,
        score_samples,
    )
    from fleetbench.scoring.passk import mean_pass_at_k, pass_at_k, pass_at_ks
    from fleetbench.scoring.wattbot import (
        QuestionScore,
        ScoreInputError,
        WattBotScore,
        score_files,
        score_frames,
    )

_WHERE = {
    **dict.fromkeys(("Extracted", "build_program", "extract_code"), "code_extract"),
    **dict.fromkeys(
        ("HumanEvalProblem", "HumanEvalSample", "HumanEvalScore", "SampleResult",
         "load_problems", "read_samples", "score_file", "score_samples"),
        "humaneval",
    ),
    **dict.fromkeys(("mean_pass_at_k", "pass_at_k", "pass_at_ks"), "passk"),
    **dict.fromkeys(
        ("QuestionScore", "ScoreInputError", "WattBotScore", "score_files", "score_frames"),
        "wattbot",
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetbench.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fleetbench.scoring.{module}"), name)


__all__ = [
    "Extracted",
    "HumanEvalProblem",
    "HumanEvalSample",
    "HumanEvalScore",
    "QuestionScore",
    "SampleResult",
    "ScoreInputError",
    "WattBotScore",
    "build_program",
    "extract_code",
    "load_problems",
    "mean_pass_at_k",
    "pass_at_k",
    "pass_at_ks",
    "read_samples",
    "score_file",
    "score_files",
    "score_frames",
    "score_samples",
]
