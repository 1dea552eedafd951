"""Splitting reasoning from the visible answer, on outputs shaped like real models'."""

from __future__ import annotations

import pytest

from fleetbench.scoring.response import SplitResponse, split_response

R1_OUTPUT = """<think>
Okay, the user asks for 17 * 23. Let me compute.
17 * 20 = 340, 17 * 3 = 51, so 340 + 51 = 391.

Double-check: 23 * 17 = 23 * 10 + 23 * 7 = 230 + 161 = 391. Yes.
</think>

17 x 23 = **391**."""


def test_think_block_multiline() -> None:
    split = split_response(R1_OUTPUT)
    assert split.format == "think"
    assert split.answer == "17 x 23 = **391**."
    assert split.reasoning is not None
    assert split.reasoning.startswith("Okay, the user asks")
    assert split.reasoning.endswith("= 391. Yes.")
    assert "<think>" not in split.reasoning and "</think>" not in split.answer


def test_think_block_with_leading_whitespace() -> None:
    split = split_response("\n\n<think>Short thought.</think>   Paris  \n")
    assert split == SplitResponse(answer="Paris", reasoning="Short thought.", format="think")


def test_empty_think_block_is_empty_reasoning() -> None:
    # Qwen3 with thinking off still emits an empty block in some templates.
    split = split_response("<think>\n\n</think>\n\nThe capital of France is Paris.")
    assert split == SplitResponse(
        answer="The capital of France is Paris.", reasoning="", format="think"
    )


def test_only_closing_tag_template_opened_think() -> None:
    # Qwen3-Next-Thinking / R1 with a "<think>" prefix: the template wrote the opening tag.
    text = (
        "The user wants a haiku about autumn.\n"
        "5-7-5 syllables. Leaves, wind, cold.\n"
        "</think>\n\n"
        "Crimson leaves drifting\nwhispers of the cooling wind\nthe year exhales slow"
    )
    split = split_response(text)
    assert split.format == "think"
    assert (
        split.reasoning
        == "The user wants a haiku about autumn.\n5-7-5 syllables. Leaves, wind, cold."
    )
    assert split.answer.startswith("Crimson leaves drifting\n")
    assert split.answer.endswith("the year exhales slow")


def test_unclosed_think_is_all_reasoning() -> None:
    # max_tokens ran out mid-thought.
    split = split_response("<think>\nLet me think step by step. First, 12 squared is 144, then")
    assert split == SplitResponse(
        answer="",
        reasoning="Let me think step by step. First, 12 squared is 144, then",
        format="think",
    )


def test_think_close_is_the_whole_output() -> None:
    assert split_response("</think>") == SplitResponse(answer="", reasoning="", format="think")


def test_quoted_tag_pair_stays_in_reasoning() -> None:
    text = (
        "<think>They ask what <think> and </think> mean in model output. "
        "They delimit reasoning.</think>\n"
        "They mark where a model's reasoning starts and ends."
    )
    split = split_response(text)
    assert split.reasoning == (
        "They ask what <think> and </think> mean in model output. They delimit reasoning."
    )
    assert split.answer == "They mark where a model's reasoning starts and ends."


def test_quoted_pair_with_template_opened_think() -> None:
    split = split_response("Tags <think>…</think> wrap thoughts.\n</think>\nAnswer: tags.")
    assert split.reasoning == "Tags <think>…</think> wrap thoughts."
    assert split.answer == "Answer: tags."


def test_unbalanced_tags_split_at_last_close() -> None:
    split = split_response("<think>An opening <think> tag is quoted here.</think>Done.")
    assert split.reasoning == "An opening <think> tag is quoted here."
    assert split.answer == "Done."


def test_answer_mentioning_open_tag_midway_is_plain() -> None:
    text = "Wrap the model's thoughts in a <think> element."
    assert split_response(text) == SplitResponse(answer=text, reasoning=None, format="plain")


HARMONY = (
    '<|channel|>analysis<|message|>User asks: "What is 2+2?" Simple arithmetic.\n'
    "Answer: 4.<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>"
)


def test_harmony_analysis_then_final() -> None:
    split = split_response(HARMONY)
    assert split == SplitResponse(
        answer="2 + 2 = 4.",
        reasoning='User asks: "What is 2+2?" Simple arithmetic.\nAnswer: 4.',
        format="harmony",
    )


def test_harmony_with_leading_start_assistant() -> None:
    assert split_response("<|start|>assistant" + HARMONY) == split_response(HARMONY)


def test_harmony_commentary_counts_as_reasoning() -> None:
    text = (
        "<|channel|>analysis<|message|>Need the weather; call the tool.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather "
        '<|constrain|>json<|message|>{"city":"Tokyo"}<|call|>'
        "<|start|>assistant<|channel|>final<|message|>It is sunny in Tokyo.<|return|>"
    )
    split = split_response(text)
    assert split.format == "harmony"
    assert split.answer == "It is sunny in Tokyo."
    assert split.reasoning == 'Need the weather; call the tool.\n\n{"city":"Tokyo"}'


def test_harmony_without_final_is_all_reasoning() -> None:
    text = "<|channel|>analysis<|message|>We need to list primes below 20: 2, 3, 5, 7, 11,"
    assert split_response(text) == SplitResponse(
        answer="", reasoning="We need to list primes below 20: 2, 3, 5, 7, 11,", format="harmony"
    )


def test_harmony_final_only() -> None:
    text = "<|channel|>final<|message|>Hello! How can I help?<|return|>"
    assert split_response(text) == SplitResponse(
        answer="Hello! How can I help?", reasoning=None, format="harmony"
    )


def test_harmony_cut_off_in_final_header() -> None:
    text = "<|channel|>analysis<|message|>Easy: 4.<|end|><|start|>assistant<|channel|>fin"
    split = split_response(text)
    assert (split.answer, split.reasoning) == ("", "Easy: 4.")


def test_degraded_harmony_special_tokens_stripped() -> None:
    text = (
        'analysisThe user asks "What is 2+2?". That is 4. Provide the answer.'
        "assistantfinalThe answer is 4."
    )
    assert split_response(text) == SplitResponse(
        answer="The answer is 4.",
        reasoning='The user asks "What is 2+2?". That is 4. Provide the answer.',
        format="harmony",
    )


def test_degraded_harmony_variants() -> None:
    lead = split_response("assistantanalysisWe compute 6*7 = 42.assistantfinal42")
    assert (lead.answer, lead.reasoning, lead.format) == ("42", "We compute 6*7 = 42.", "harmony")
    cut = split_response("analysisWe need to explain photosynthesis. Plants convert")
    assert (cut.answer, cut.format) == ("", "harmony")
    assert cut.reasoning == "We need to explain photosynthesis. Plants convert"
    tool = split_response(
        "analysisNeed a lookup.assistantcommentary to=functions.search json"
        '{"q":"tides"}assistantfinalTides come from the moon.'
    )
    assert tool.answer == "Tides come from the moon."
    assert tool.reasoning is not None and tool.reasoning.startswith("Need a lookup.\n\n")


@pytest.mark.parametrize(
    "text",
    [
        "analysis of the data shows a clear upward trend.",
        "Analysis: the function is O(n log n).",
        "final answer: 42",
        "The assistant should be concise.",
        "",
        "  \n",
    ],
)
def test_plain_text(text: str) -> None:
    assert split_response(text) == SplitResponse(answer=text, reasoning=None, format="plain")
