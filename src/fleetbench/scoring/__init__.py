"""Scorers that compare a run's answers with reference answers (usable without a run)."""

from fleetbench.scoring.wattbot import (
    QuestionScore,
    ScoreInputError,
    WattBotScore,
    score_files,
    score_frames,
)

__all__ = ["QuestionScore", "ScoreInputError", "WattBotScore", "score_files", "score_frames"]
