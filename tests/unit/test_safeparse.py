"""Hostile YAML/JSON: bounded expansion and depth, reported as ordinary parse errors."""

from __future__ import annotations

import json

import pytest
import yaml

from fleetbench.safeparse import MAX_DEPTH, compose_yaml, load_yaml, loads_json


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_expansion() -> None:
    with pytest.raises(yaml.MarkedYAMLError, match="expands to more than"):
        compose_yaml(billion_laughs())


def test_modest_aliases_still_load() -> None:
    data = load_yaml(billion_laughs(levels=3))  # 9**4 values: a real (if odd) document
    assert len(data["a3"]) == 9 and data["a3"][0][0][0] == ["lol"] * 9


@pytest.mark.parametrize(
    "text",
    ["x: " + "[" * 20_000 + "]" * 20_000, "".join("  " * i + f"k{i}:\n" for i in range(500))],
    ids=["flow", "block"],
)
def test_deep_yaml_names_its_line(text: str) -> None:
    with pytest.raises(yaml.MarkedYAMLError, match=f"nested deeper than {MAX_DEPTH}") as info:
        compose_yaml(text)
    assert info.value.problem_mark is not None


def test_yaml_at_the_depth_limit_loads() -> None:
    depth = MAX_DEPTH - 2
    data = load_yaml("[" * depth + "1" + "]" * depth)
    for _ in range(depth):
        data = data[0]
    assert data == 1


def test_empty_yaml_is_none() -> None:
    assert compose_yaml("") == (None, None)


def test_deep_json_is_a_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        loads_json("[" * 100_000 + "]" * 100_000)
    assert loads_json(b'{"a": [1, 2]}') == {"a": [1, 2]}
