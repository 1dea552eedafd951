"""textgen prompt sets: built-in, any dataset source, chosen fields, first N."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbench.errors import ConfigError
from fleetbench.tasks.textgen import TextGenOptions, TextGenTask


def task(**options: object) -> TextGenTask:
    return TextGenTask(TextGenOptions.model_validate(options))


def test_builtin_prompts() -> None:
    samples = task().samples()
    assert len(samples) == 20
    assert [s.index for s in samples] == list(range(20))
    assert all(s.prompt.strip() for s in samples)


def test_csv_with_a_named_field_and_first_n(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("qid,text\nq1,First prompt\nq2,Second prompt\nq3,Third prompt\n")
    samples = task(prompts_file=str(path), prompt_field="text", id_field="qid", n_prompts=2)
    got = samples.samples()
    assert [(s.id, s.prompt) for s in got] == [("q1", "First prompt"), ("q2", "Second prompt")]


def test_package_source_and_missing_ids_fall_back_to_the_index(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b"}\n')
    assert [s.id for s in task(prompts_file=str(path)).samples()] == ["0", "1"]
    pkg = task(prompts_file="package:fleetbench.tasks.data/textgen_prompts.jsonl", n_prompts=3)
    assert len(pkg.samples()) == 3


def test_a_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": ""}\n')
    with pytest.raises(ConfigError, match=r"p.jsonl:2: field 'prompt' must be a non-empty"):
        task(prompts_file=str(path)).samples()
    empty = tmp_path / "e.csv"
    empty.write_text("prompt\n")
    with pytest.raises(ConfigError, match="no prompts found"):
        task(prompts_file=str(empty)).samples()


def test_token_protocol() -> None:
    opts = TextGenOptions()
    assert TextGenTask.generation_defaults(opts, reasoning=False) == {
        "max_tokens": 10,
        "min_tokens": 10,
    }
    assert TextGenTask.generation_defaults(opts, reasoning=True)["max_tokens"] == 8192
    assert TextGenTask.generation_defaults(TextGenOptions(token_protocol="none"), True) == {}
