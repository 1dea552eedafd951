"""The real AI Energy Score catalogues (Oct 2025 and the maintainers' later revision)."""

from __future__ import annotations

import pytest
from conftest import AES_LATEST as LATEST
from conftest import AES_OCT as OCT

from fleetbench.catalog import ModelFilter, ModelSpec, load_catalog


@pytest.fixture(scope="module")
def oct_rows() -> list[ModelSpec]:
    return load_catalog(OCT)


def by(entries: list[ModelSpec], model_id: str, state: str) -> ModelSpec:
    found = [e for e in entries if e.id == model_id and e.reasoning_state == state]
    assert found, (model_id, state)
    return found[0]


def mechanism(e: ModelSpec) -> tuple[object, ...]:
    return (e.reasoning, e.reasoning_effort, e.chat_template_kwargs, e.system_prompt,
            e.prompt_prefix)  # fmt: skip


def test_all_rows_load_in_file_order_with_normalised_ids(oct_rows: list[ModelSpec]) -> None:
    assert len(oct_rows) == 56
    assert oct_rows[0].id == "openai/gpt-oss-20b" and oct_rows[-1].id.endswith("Qwen-32B")
    assert all(not e.id.startswith("http") and e.id == e.id.strip() for e in oct_rows)
    assert "swiss-ai/Apertus-8B-Instruct-2509" in {e.id for e in oct_rows}  # had a trailing space
    assert len({e.name for e in oct_rows}) == 56  # names are unique
    assert oct_rows[0].source.endswith("row 1 (line 2)")
    assert {e.model_class for e in oct_rows} == {"A", "B", "C", ""}


def test_gpt_oss(oct_rows: list[ModelSpec]) -> None:
    for model in ("openai/gpt-oss-20b", "openai/gpt-oss-120b"):
        for effort in ("High", "Low", "Medium"):
            e = by(oct_rows, model, f"On ({effort})")
            assert e.family == "gpt-oss" and not e.warnings
            expected = {"reasoning_effort": effort.lower()}
            assert mechanism(e) == (True, effort.lower(), expected, None, "")
    off = by(oct_rows, "openai/gpt-oss-20b", "Off (N/A)")
    assert mechanism(off) == (False, None, {}, None, "")
    assert any("cannot fully disable" in w for w in off.warnings)


@pytest.mark.parametrize(
    ("model_id", "state", "thinking"),
    [
        ("Qwen/Qwen3-30B-A3B", "On", True),
        ("Qwen/Qwen3-30B-A3B", "Off", False),
        ("Qwen/Qwen3-235B-A22B", "On", True),  # text says only "reasoning: True"
        ("Qwen/Qwen3-235B-A22B", "Off", False),
        ("Qwen/Qwen3-0.6B", "On", True),
        ("Qwen/Qwen3-0.6B", "Off", False),
        ("HuggingFaceTB/SmolLM3-3B", "On", True),
        ("HuggingFaceTB/SmolLM3-3B", "Off", False),
    ],
)
def test_enable_thinking_families(
    oct_rows: list[ModelSpec], model_id: str, state: str, thinking: bool
) -> None:
    e = by(oct_rows, model_id, state)
    assert e.family in ("qwen3", "smollm3")
    assert mechanism(e) == (thinking, None, {"enable_thinking": thinking}, None, "")
    assert e.warnings == []


def test_qwen3_next(oct_rows: list[ModelSpec]) -> None:
    thinking = by(oct_rows, "Qwen/Qwen3-Next-80B-A3B-Thinking", "On")
    assert thinking.family == "qwen3-next-thinking"
    assert mechanism(thinking) == (True, None, {}, None, "")  # its template opens <think>
    instruct = by(oct_rows, "Qwen/Qwen3-Next-80B-A3B-Instruct", "On")
    assert instruct.family == "qwen3-next-instruct"
    assert mechanism(instruct) == (False, None, {}, None, "")
    assert any("cannot think" in w for w in instruct.warnings)


def test_deepseek_r1(oct_rows: list[ModelSpec]) -> None:
    assert mechanism(by(oct_rows, "deepseek-ai/DeepSeek-R1", "On")) == (True, None, {}, None,
                                                                        "<think>")  # fmt: skip
    assert mechanism(by(oct_rows, "deepseek-ai/DeepSeek-R1", "Off")) == (False, None, {}, None, "")
    r1_0528 = by(oct_rows, "deepseek-ai/DeepSeek-R1-0528", "On")
    assert mechanism(r1_0528) == (True, None, {"enable_thinking": True}, None, "")
    assert mechanism(by(oct_rows, "deepseek-ai/DeepSeek-R1-0528", "Off")) == (
        False, None, {}, None, "")  # fmt: skip
    assert by(oct_rows, "deepseek-ai/DeepSeek-V3", "Off (N/A)").family == "other"


def test_hunyuan_nemotron(oct_rows: list[ModelSpec]) -> None:
    hy = "tencent/Hunyuan-1.8B-Instruct"
    assert mechanism(by(oct_rows, hy, "On")) == (True, None, {}, None, "/think")
    assert mechanism(by(oct_rows, hy, "Off")) == (False, None, {"enable_thinking": False}, None, "")
    nem = "nvidia/Llama-3_3-Nemotron-Super-49B-v1_5"
    assert by(oct_rows, nem, "Off").family == "nemotron-super-v1.5"
    assert mechanism(by(oct_rows, nem, "Off")) == (False, None, {}, "/no_think", "")
    assert mechanism(by(oct_rows, nem, "On")) == (True, None, {}, None, "")


def test_exaone_contradictions_follow_the_state(oct_rows: list[ModelSpec]) -> None:
    on = by(oct_rows, "LGAI-EXAONE/EXAONE-4.0-32B", "On")  # no mechanism in the text
    off = by(oct_rows, "LGAI-EXAONE/EXAONE-4.0-32B", "Off")  # text says enable_thinking=True
    assert mechanism(on) == (True, None, {"enable_thinking": True}, None, "")
    assert mechanism(off) == (False, None, {"enable_thinking": False}, None, "")
    assert any("names no mechanism" in w for w in on.warnings)
    assert any("thinking=True but Reasoning State is Off" in w for w in off.warnings)


def test_r1_distill_contradictions_and_duplicates(oct_rows: list[ModelSpec]) -> None:
    for model in ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
                  "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"):  # fmt: skip
        first, second = [e for e in oct_rows if e.id == model]
        assert first.family == "deepseek-r1-distill"
        assert mechanism(first) == mechanism(second) == (True, None, {}, None, "<think>")
        assert any("thinking=False but Reasoning State is On" in w for w in first.warnings)
        assert first.supported
        assert not second.supported and "duplicate of row" in (second.skip_reason or "")


def test_image_rows_are_kept_but_unsupported(oct_rows: list[ModelSpec]) -> None:
    images = [e for e in oct_rows if e.task == "image_gen"]
    assert [e.id for e in images] == [
        "Qwen/Qwen-Image",
        "black-forest-labs/FLUX.1-dev",
        "HiDream-ai/HiDream-I1-Full",
    ]
    for e in images:
        assert not e.supported and "image_gen" in (e.skip_reason or "")
        assert e.reasoning is False and e.model_class == ""


def test_everything_else_has_no_mechanism(oct_rows: list[ModelSpec]) -> None:
    plain = [e for e in oct_rows if e.family == "other" and e.task == "text_gen"]
    assert {e.id for e in plain} >= {"Qwen/Qwen2.5-Coder-14B", "zai-org/GLM-4.6",
                                     "deepseek-ai/DeepSeek-V3.2-Exp"}  # fmt: skip
    for e in plain:
        assert e.chat_template_kwargs == {} and e.prompt_prefix == "" and e.system_prompt is None
        if e.reasoning_state == "Off (N/A)":
            assert e.reasoning is False and e.warnings == []
    gemma = by(oct_rows, "google/gemma-3-4b-pt", "On")
    assert gemma.reasoning is True and any("no known reasoning switch" in w for w in gemma.warnings)


def test_latest_revision_loads_without_the_contradictions() -> None:
    rows = load_catalog(LATEST)
    assert len(rows) == 56
    exaone = [e for e in rows if e.family == "exaone-4"]
    assert [e.chat_template_kwargs for e in exaone] == [{"enable_thinking": True},
                                                        {"enable_thinking": False}]  # fmt: skip
    assert all(e.warnings == [] for e in exaone)
    assert all(e.supported for e in rows if e.task == "text_gen")


def test_filters_combine_with_and(oct_rows: list[ModelSpec]) -> None:
    def names(f: ModelFilter) -> list[str]:
        return [e.name for e in oct_rows if f.matches(e)]

    assert names(ModelFilter(model_class=["B"], reasoning="high")) == [
        "openai/gpt-oss-20b [On (High)]"
    ]
    assert len(names(ModelFilter(task=["image_gen"]))) == 3
    assert len(names(ModelFilter(max_priority=1))) == 27
    assert names(ModelFilter(name=["qwen3-0.6"], reasoning="OFF")) == ["Qwen/Qwen3-0.6B [Off]"]
    assert ModelFilter(max_priority=2).why_not(oct_rows[-1]) == "priority 3 > 2"
