"""Robust parsing of WattBot JSON answers."""

from __future__ import annotations

import pytest

from fleetbench.scoring.response import split_response
from fleetbench.tasks.answer_json import parse

FULL = (
    '{"answer_value": "4.3", "answer_unit": "tCO2e", "ref_id": ["patterson2021"], '
    '"explanation": "x"}'
)


@pytest.mark.parametrize(
    "text",
    [
        FULL,
        f"```json\n{FULL}\n```",
        f"```\n{FULL}\n```\nHope this helps!",
        f"Sure! Here is the answer: {FULL} Let me know.",
        f"<think>the {{value}} is 4.3</think>\n{FULL}",
        f"reasoning the template opened</think>{FULL}",
        "{'answer_value': '4.3', 'answer_unit': 'tCO2e', 'ref_id': ['patterson2021'], "
        "'explanation': 'x'}",
        '{"answer_value": "4.3", "answer_unit": "tCO2e", "ref_id": ["patterson2021",],'
        ' "explanation": "x",}',
        '{"answer_value": 4.3, "answer_unit": "tCO2e", "ref_id": "patterson2021", '
        '"explanation": "x"}',
    ],
)
def test_object_forms(text: str) -> None:
    parsed = parse(text)
    assert parsed.ok, parsed.error
    assert (parsed.answer_value, parsed.answer_unit, parsed.ref_ids) == (
        "4.3", "tCO2e", ["patterson2021"],
    )  # fmt: skip


def test_field_types() -> None:
    parsed = parse('{"answer_value": true, "ref_id": "[\'a\', \'b\']", "explanation": null}')
    assert (parsed.answer_value, parsed.ref_ids, parsed.explanation) == ("1", ["a", "b"], "")
    assert parse('{"answer_value": [1, 2.5]}').answer_value == "[1, 2.5]"
    assert parse('{"answer_value": 12.0}').answer_value == "12"
    assert parse('{"Answer": "yes", "refs": "a, b"}').ref_ids == ["a", "b"]


def test_cut_off_object_is_closed() -> None:
    parsed = parse('{"answer_value": "64.7", "answer_unit": "GB", "ref_id": ["chen2024"], "expl')
    assert parsed.ok and parsed.answer_value == "64.7" and parsed.ref_ids == ["chen2024"]
    assert parse('{"answer_value": "64.7", "explanation": "the model\'s size is').ok


@pytest.mark.parametrize(
    ("text", "value"),
    [("42", "42"), ('"1,000 kWh"', "1,000 kWh"), ("  is_blank\n", "is_blank"), ("`7`", "7")],
)
def test_bare_value(text: str, value: str) -> None:
    parsed = parse(text)
    assert parsed.ok and parsed.answer_value == value and parsed.ref_ids == []


@pytest.mark.parametrize(
    "text",
    ["", "   ", "<think>never finished", "The answer is\nprobably 42 but I am not sure.",
     "x" * 101, '{"answer_unit": "GB"}', "{not json at all: [}"],
)  # fmt: skip
def test_unparsable(text: str) -> None:
    parsed = parse(text)
    assert not parsed.ok and parsed.error


OTHER = '{"answer_value": "9", "ref_id": ["b"]}'
REALISTIC = [
    FULL,
    f"<think>the {{value}} is 4.3</think>\n{FULL}",
    f"\n\n<think>\nLet me recall.\n</think>\n\n{FULL}\n",
    f"<think></think>{FULL}",  # thinking off, empty block
    f"reasoning the template opened</think>{FULL}",
    f"Tags <think>x</think> wrap thoughts.\n</think>{FULL}",  # quoted pair, template-opened
    f"<think>a <think>b</think> c</think>{FULL}",  # nested
    f"Sure: <think>hmm</think>{FULL}",
    f"<think>a</think>{FULL}<think>b</think>{OTHER}",  # a second block after the answer
    f"<think>{OTHER}",  # cut off mid-thought
    "<think>never finished",
    f"```json\n{FULL}\n```",
    "42",
    "is_blank",
]


@pytest.mark.parametrize("text", REALISTIC)
def test_reasoning_is_dropped_as_split_response_does(text: str) -> None:
    """On realistic outputs parsing the raw text equals parsing its split answer."""
    assert parse(text) == parse(split_response(text).answer)


@pytest.mark.parametrize(
    "text",
    [
        f"<think>a</think>ok <think>{OTHER}</think>{FULL}",  # an object in a later block
        f"r</think>{OTHER}</think>{FULL}",  # several stray closing tags: the last one counts
    ],
)
def test_odd_multi_block_outputs_keep_every_block_out(text: str) -> None:
    """Where split_response would keep text after its balancing tag, parse drops every
    block (and all before the last stray ``</think>``): the answer is FULL's."""
    assert parse(text).answer_value == "4.3"
    assert "9" in split_response(text).answer  # the difference, kept on purpose
