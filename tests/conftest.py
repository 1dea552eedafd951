"""Shared fixtures: run the real CLI in a subprocess, write small plans."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# A suite started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
# ignored, and so would every child it starts: the Ctrl-C tests could never interrupt
# anything. A Python handler here becomes the default action in children after exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SUPPORT = Path(__file__).parent / "support"
DATA = Path(__file__).parent / "data"
AES_OCT = DATA / "ai_energy_score_oct2025_models.csv"
AES_LATEST = DATA / "ai_energy_score_models_latest.csv"
PROMPTS = [
    "Say hello.",
    "Name a colour.",
    "What is 2 + 2?",
    "Name an animal.",
    "Say goodbye.",
    "Name a fruit.",
]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetbench", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(PROMPTS))
    )
    return path


PlanWriter = Callable[..., Path]


@pytest.fixture
def write_plan(tmp_path: Path, prompts_file: Path) -> PlanWriter:
    """Write a plan of SmolLM2 (between ``lead_models`` and ``extra_models``) on the
    small prompt set."""

    def write(
        extra_models: list[dict[str, Any]] | None = None,
        lead_models: list[dict[str, Any]] | None = None,
        max_tokens: int = 12,
        name: str = "plan.yaml",
        **top: Any,
    ) -> Path:
        plan = {
            "name": "test",
            "models": [
                *(lead_models or []),
                {
                    "name": "smollm2",
                    "backend": "llamacpp",
                    "model_class": "A",
                    "reasoning_state": "Off (N/A)",
                },
                *(extra_models or []),
            ],
            "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts_file)}}],
            "generation": {"temperature": 0.0, "max_tokens": max_tokens, "seed": 7},
            **top,
        }
        path = tmp_path / name
        path.write_text(yaml.safe_dump(plan, sort_keys=False))
        return path

    return write


def db_rows(output: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(output / "fleetbench.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
