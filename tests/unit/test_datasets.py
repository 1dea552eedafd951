"""Dataset rows from local files, package files and the (unreachable) hub."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest

from fleetbench.errors import ConfigError
from fleetbench.tasks.datasets import load_rows, parse_hub_source

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
HAS_DATASETS = importlib.util.find_spec("datasets") is not None


def test_jsonl_rows_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"input": "a", "target": 1}\n\n{"input": "b", "target": "x"}\n')
    rows = load_rows(path)
    assert [r.data["input"] for r in rows] == ["a", "b"]
    assert [r.where for r in rows] == [f"{path}:1", f"{path}:3"]
    assert str(rows[1].error("target", "is bad")) == f"{path}:3: field 'target' is bad"


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a"}\n{"input": \n')
    with pytest.raises(ConfigError, match=rf"^{path}:2: invalid JSON"):
        load_rows(path)
    path.write_text('{"input": "a"}\n["a list"]\n')
    with pytest.raises(ConfigError, match=rf"^{path}:2: expected a JSON object"):
        load_rows(path)


def test_csv_rows_multiline_cells_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text(
        'input,target,choices\n"two\nlines",A,"[""x"", ""y""]"\n,,\nplain,B,\n', encoding="utf-8"
    )
    rows = load_rows(path)
    assert [r.data["input"] for r in rows] == ["two\nlines", "plain"]
    assert rows[0].data["choices"] == '["x", "y"]'
    assert [r.where for r in rows] == [f"{path}:3", f"{path}:5"]


def test_csv_too_many_values(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("input,target\na,b,c\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: more values than header columns"):
        load_rows(path)


def test_json_list_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([{"input": "q", "target": "t"}]))
    assert load_rows(tmp_path / "a.json")[0].data == {"input": "q", "target": "t"}
    (tmp_path / "a.tsv").write_text("input\ttarget\nq\tt\n")
    assert load_rows(tmp_path / "a.tsv")[0].data == {"input": "q", "target": "t"}


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.jsonl: cannot read dataset file"):
        load_rows(tmp_path / "nope.jsonl")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"unknown dataset format '\.txt'"):
        load_rows(tmp_path / "a.txt")


@pytest.mark.skipif(HAS_PYARROW, reason="pyarrow is installed")
def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path) -> None:
    path = tmp_path / "set.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(
        ConfigError, match=r"needs pyarrow; run: pip install 'fleetbench\[parquet\]'"
    ):
        load_rows(path)


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_parquet_rows(tmp_path: Path) -> None:  # pragma: no cover - needs pyarrow
    import pyarrow as pa  # type: ignore[import-not-found, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]

    path = tmp_path / "set.parquet"
    pq.write_table(pa.table({"input": ["q1", "q2"], "target": ["a", "b"]}), path)
    rows = load_rows(path)
    assert [r.data["input"] for r in rows] == ["q1", "q2"]
    assert rows[1].where == f"{path}:row 2"


def test_package_file() -> None:
    rows = load_rows("package:fleetbench.tasks.data/textgen_prompts.jsonl")
    assert len(rows) >= 10
    assert rows[0].where == "package:fleetbench.tasks.data/textgen_prompts.jsonl:1"
    assert isinstance(rows[0].data["prompt"], str)


def test_package_errors() -> None:
    with pytest.raises(ConfigError, match="no installed package 'no_such_pkg_xyz'"):
        load_rows("package:no_such_pkg_xyz/a.jsonl")
    with pytest.raises(ConfigError, match="cannot read file in package"):
        load_rows("package:fleetbench.tasks.data/missing.jsonl")
    with pytest.raises(ConfigError, match="expected package:PKG/relative/path"):
        load_rows("package:fleetbench")


def test_hub_source_parsing() -> None:
    assert parse_hub_source("hf://org/name") == ("org/name", "train")
    assert parse_hub_source("hf://org/name:test") == ("org/name", "test")
    with pytest.raises(ConfigError, match="expected hf://ORG/NAME"):
        parse_hub_source("hf://a/b/c")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: the hub path must not try one."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.usefixtures("no_network")
def test_hub_offline_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as info:
        load_rows("hf://openai/gsm8k:test")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("hf://openai/gsm8k:test: cannot reach the Hugging Face hub for ")
    assert "openai/gsm8k; download the dataset and pass a local file" in message


@pytest.mark.skipif(HAS_DATASETS, reason="datasets is installed")
@pytest.mark.usefixtures("no_network")
def test_hub_without_datasets_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(ConfigError, match=r"run: pip install 'fleetbench\[datasets\]'"):
        load_rows("hf://openai/gsm8k")
