"""Small pure pieces of fleet discovery: Ollama URLs and sizes, name lists, tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbench.catalog import ModelFilter, ModelSpec
from fleetbench.catalog.filters import name_list
from fleetbench.catalog.ollama import ollama_url, params_b
from fleetbench.runner.adhoc import is_catalog


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("https://ollama.example/v1/", "https://ollama.example"),  # its scheme's port
        ("http://127.0.0.1:11434/api", "http://127.0.0.1:11434"),
    ],
)
def test_ollama_url(given: str | None, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ollama_url(given) == expected


def test_ollama_host_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "10.0.0.5:11500")
    assert ollama_url() == "http://10.0.0.5:11500"


def test_parameter_sizes() -> None:
    assert params_b("8.0B") == 8.0
    assert params_b("134.52M") == 0.13452
    assert params_b("1.2T") == 1200.0
    assert params_b("big") is None and params_b(None) is None


def test_name_lists_and_all() -> None:
    assert name_list(["llama3,mistral", " codellama "]) == ["llama3", "mistral", "codellama"]
    assert name_list(["all"]) == [] and name_list(["qwen,ALL"]) == [] and name_list(None) == []


def test_tags_from_any_spelling_and_the_category_filter() -> None:
    a = ModelSpec.model_validate({"name": "a", "category": "fast"})
    b = ModelSpec.model_validate({"name": "b", "categories": ["powerful", "coding"]})
    c = ModelSpec.model_validate({"name": "c", "tags": "fast, coding, fast"})
    assert (a.tags, b.tags, c.tags) == (["fast"], ["powerful", "coding"], ["fast", "coding"])
    wanted = ModelFilter(category=["CODING"])
    assert [m.name for m in (a, b, c) if wanted.matches(m)] == ["b", "c"]
    assert "not in --category CODING" in (wanted.why_not(a) or "")


def test_catalogue_or_plan(tmp_path: Path) -> None:
    files = {
        "cat.yaml": "models: [{name: a}]\n",
        "mc.yaml": "categories: {fast: {}}\nmodels: [{name: a, provider: openai}]\n",
        "plan.yaml": "models: [{name: a}]\ntasks: [{name: textgen}]\n",
        "no_tasks_plan.yaml": "name: p\nmodels: [{name: a}]\n",
        "list.yaml": "- a\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    found = {n for n in files if is_catalog(tmp_path / n)}
    assert found == {"cat.yaml", "mc.yaml"}
    assert is_catalog(tmp_path) and is_catalog(tmp_path / "missing.csv")
