"""Scorers that compare a run's answers with reference answers (usable without a run)."""

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
