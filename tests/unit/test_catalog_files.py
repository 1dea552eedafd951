"""Catalogue files: YAML round trip, malformed input, plans that reference catalogues."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import AES_OCT as OCT

from fleetbench.catalog import dump_yaml, load_catalog
from fleetbench.catalog.loaders import load_yaml
from fleetbench.errors import CatalogError
from fleetbench.runner.plan import load_plan

HEADER = ",Models to Add,Priority (1=hi),Class,Task,Reasoning State,Chat Template\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_round_trip_keeps_resolved_settings(tmp_path: Path) -> None:
    entries = load_catalog(OCT)
    again = load_yaml(write(tmp_path, "cat.yaml", dump_yaml(entries)))
    keys = ("name", "id", "family", "reasoning", "reasoning_effort", "chat_template_kwargs",
            "system_prompt", "prompt_prefix", "supported", "skip_reason", "priority",
            "model_class", "task")  # fmt: skip
    assert [{k: getattr(e, k) for k in keys} for e in again] == [
        {k: getattr(e, k) for k in keys} for e in entries
    ]


def test_yaml_catalogue_fields_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cat.yaml",
        """\
defaults:
  backend: llamacpp
  model_class: A
models:
  - id: https://huggingface.co/Qwen/Qwen3-0.6B
    reasoning_state: "On"
    options: {model_path: /models/qwen3-0.6b.gguf}
    params_b: 0.6
    dtype: q4_1
    price_input_per_1m: 0.1
    price_output_per_1m: 0.4
  - name: custom
    family: hunyuan
    reasoning: true
    prompt_suffix: " Answer briefly."
""",
    )
    qwen, custom = load_catalog(path)
    assert (qwen.id, qwen.family, qwen.model_class) == ("Qwen/Qwen3-0.6B", "qwen3", "A")
    assert qwen.chat_template_kwargs == {"enable_thinking": True}
    assert (qwen.params_b, qwen.price_output_per_1m) == (0.6, 0.4)
    assert qwen.name == "Qwen/Qwen3-0.6B [On]"
    assert custom.prompt_prefix == "/think" and custom.prompt_suffix == " Answer briefly."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            ",Models to Add,Class\n,x/y,A\n",
            r"cat.csv:1: missing column\(s\) 'Priority \(1=hi\)', 'Task'",
        ),
        (
            HEADER + ",https://huggingface.co/a/b,1,D,text_gen,Off (N/A),N/A\n",
            r"cat.csv:row 1 \(line 2\): Class: unknown class 'D'; valid: A, B, C",
        ),
        (
            HEADER + ',a/b,1,A,text_gen,On,"  reasoning: True\n   bad: [unclosed"\n',
            r"cat.csv:row 1 \(line 2\): Chat Template: unparsable YAML fragment",
        ),
        (
            HEADER + ",a/b,1,A,text_gen,Maybe,N/A\n",
            r"row 1 \(line 2\): Reasoning State: invalid reasoning state 'Maybe'",
        ),
        (
            HEADER + ",a/b,first,A,text_gen,Off,N/A\n",
            r"row 1 \(line 2\): Priority \(1=hi\): Input should be a valid integer",
        ),
        (
            HEADER + ",a/b,1,D,text_gen,Off,N/A\n,c/d,1,A,text_gen,Sometimes,N/A\n",
            r"row 1 .*unknown class 'D'.*and 1 more: .*row 2 \(line 3\): Reasoning State",
        ),
    ],
)
def test_malformed_csv(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        load_catalog(write(tmp_path, "cat.csv", text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  - id: a/b\n    family: mystery\n",
            r"cat.yaml:2: models\[0\]: family: unknown family 'mystery'; valid: gpt-oss",
        ),
        (
            "models:\n  - id: a/b\n    colour: red\n",
            r"cat.yaml:2: models\[0\]: colour: unknown field 'colour'",
        ),
        ("models:\n  - {}\n", r"models\[0\]: entry: an entry needs a 'name' or an 'id'"),
        ("models: [a, b]\n", r"models\[0\]: expected a mapping, got str"),
        ("modles: []\n", r"cat.yaml:1: expected a mapping with a 'models' list"),
        ("models: [\n", r"cat.yaml:2:1: invalid YAML"),
    ],
)
def test_malformed_yaml(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError if "invalid YAML" not in message else Exception,
                       match=message):  # fmt: skip
        load_catalog(write(tmp_path, "cat.yaml", text))


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"cat.txt: unknown catalogue format '.txt'"):
        load_catalog(write(tmp_path, "cat.txt", ""))
    with pytest.raises(CatalogError, match="catalogue file not found"):
        load_catalog(tmp_path / "absent.csv")


def test_plan_with_catalogue_filters_skips_and_token_protocol(tmp_path: Path) -> None:
    cat = write(
        tmp_path,
        "cat.yaml",
        """\
models:
  - {name: thinker, reasoning_state: "On", family: qwen3}
  - {name: plain, reasoning_state: Off (N/A)}
  - {name: capped, generation: {max_tokens: 5}}
  - {name: picture, task: image_gen}
  - {name: big, id: org/big-model, model_class: C}
""",
    )
    plan = write(
        tmp_path,
        "plan.yaml",
        f"""\
catalog:
  path: {cat.name}
  filter: {{model_class: [""]}}
tasks: [{{name: textgen}}]
""",
    )
    runs = {r.model.name: r for r in load_plan(plan).runs}
    assert set(runs) == {"thinker", "plain", "capped", "picture"}  # "big" is class C
    thinker, plain, capped = runs["thinker"], runs["plain"], runs["capped"]
    assert (thinker.generation.min_tokens, thinker.generation.max_tokens) == (1, 8192)
    assert (plain.generation.min_tokens, plain.generation.max_tokens) == (10, 10)
    assert (capped.generation.min_tokens, capped.generation.max_tokens) == (5, 5)
    assert thinker.model.chat_template_kwargs == {"enable_thinking": True}
    assert runs["picture"].skip_reason and "image_gen" in runs["picture"].skip_reason
    assert thinker.skip_reason is None

    overridden = write(
        tmp_path,
        "plan2.yaml",
        f"""\
catalog: {{path: {cat.name}}}
tasks: [{{name: textgen}}]
generation: {{max_tokens: 64}}
""",
    )
    runs = {r.model.name: r for r in load_plan(overridden).runs}
    assert runs["plain"].generation.max_tokens == 64  # the plan overrides the protocol
    assert runs["big"].skip_reason and "no GGUF for org/big-model" in runs["big"].skip_reason
    off = write(
        tmp_path,
        "plan3.yaml",
        f"""\
catalog: {{path: {cat.name}}}
tasks: [{{name: textgen, options: {{token_protocol: none}}}}]
""",
    )
    runs = {r.model.name: r for r in load_plan(off).runs}
    assert (runs["plain"].generation.min_tokens, runs["plain"].generation.max_tokens) == (0, 128)


def test_plan_catalogue_errors_name_the_row(tmp_path: Path) -> None:
    write(tmp_path, "cat.yaml", "models:\n  - {name: x, options: {n_ctx: 1}}\n")
    plan = write(tmp_path, "plan.yaml", "catalog: {path: cat.yaml}\ntasks: [{name: textgen}]\n")
    with pytest.raises(CatalogError, match=r"cat.yaml:2: models\[0\]: options.n_ctx: Input should"):
        load_plan(plan)
