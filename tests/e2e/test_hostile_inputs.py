"""Input that attacks the parser, unusable output folders, bad flag values: one line
``error: ...`` naming the file, exit 2, and the output folder byte-identical."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

MODEL = "models:\n  - name: smollm2\n    backend: llamacpp\n"
TASK = "tasks:\n  - name: textgen\n"


def laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_line_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    import re

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "master_results.csv").write_text("run_id\nkept\n")  # a result already there
    return folder


PLAN_CASES = {
    "alias_bomb": (laughs() + MODEL + TASK, r"plan.yaml:1:1: invalid YAML: expands to more"),
    "deep_flow_yaml": (
        MODEL + TASK + "generation: " + "[" * 20_000 + "]" * 20_000 + "\n",
        r"plan.yaml:6:\d+: invalid YAML: nested deeper than 100 levels",
    ),
    "deep_block_yaml": (
        MODEL + TASK + "".join("  " * i + f"k{i}:\n" for i in range(200)),
        r"plan.yaml:\d+:\d+: invalid YAML: nested deeper than 100 levels",
    ),
    "deep_jsonl_prompts": (
        MODEL + "tasks:\n  - name: textgen\n    options:\n      prompts_file: deep.jsonl\n",
        r"deep.jsonl:2: invalid JSON \(nested too deeply to parse\)",
    ),
    "deep_json_prompts": (
        MODEL + "tasks:\n  - name: textgen\n    options:\n      prompts_file: deep.json\n",
        r"deep.json:1: invalid JSON \(nested too deeply to parse\)",
    ),
}


@pytest.mark.parametrize("case", PLAN_CASES)
def test_hostile_plan_inputs(case: str, tmp_path: Path, out: Path) -> None:
    text, pattern = PLAN_CASES[case]
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.jsonl").write_text('{"prompt": "hi"}\n{"prompt": ' + deep + "}\n")
    (tmp_path / "deep.json").write_text(deep)
    (tmp_path / "plan.yaml").write_text(text)
    before = snapshot(out)
    result = run_cli("run", "plan.yaml", "-o", str(out), cwd=tmp_path, timeout=120)
    one_line_error(result, pattern)
    assert snapshot(out) == before


def test_hostile_catalogue(tmp_path: Path) -> None:
    (tmp_path / "cat.yaml").write_text(laughs() + "models:\n  - name: x\n")
    result = run_cli("models", "list", "--catalog", "cat.yaml", cwd=tmp_path, timeout=120)
    one_line_error(result, r"cat.yaml:1:1: invalid YAML: expands to more")


def test_deep_humaneval_samples(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    result = run_cli("score", "humaneval", "--samples", "s.jsonl", cwd=tmp_path, timeout=120)
    one_line_error(result, r"s.jsonl: line 1: bad JSON \(nested too deeply to parse\)")


def test_output_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(MODEL + TASK)
    (tmp_path / "taken").write_text("not a folder")
    result = run_cli("run", "plan.yaml", "-o", "taken", cwd=tmp_path, timeout=120)
    one_line_error(result, r"taken: the output folder is an existing file")
    result = run_cli("run", "plan.yaml", "-o", "taken/sub", cwd=tmp_path, timeout=120)
    one_line_error(result, r"taken/sub: cannot create the output folder: .*taken is a file")
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_output_not_writable(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(MODEL + TASK)
    locked = tmp_path / "locked"
    locked.mkdir()
    # root ignores permission bits; the immutable flag binds root too (where supported)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
            pytest.skip("running as root without chattr +i: cannot make a folder unwritable")
        undo = ["chattr", "-i", str(locked)]
    else:
        locked.chmod(0o555)
        undo = ["chmod", "755", str(locked)]
    try:
        for target in ("locked", "locked/sub"):
            result = run_cli("run", "plan.yaml", "-o", target, cwd=tmp_path, timeout=120)
            one_line_error(result, r"the output folder is not writable")
        assert list(locked.iterdir()) == []
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--limit", "-1"], r"Invalid value for '--limit'.*; see `fleetbench run --help`"),
        (["--timeout", "0"], r"Invalid value for '--timeout'"),
        (["--no-such-flag"], r"No such option: --no-such-flag"),
        (["missing-plan.yaml"], r"missing-plan.yaml: file not found"),
    ],
)
def test_flag_values_are_one_line(args: list[str], pattern: str, tmp_path: Path) -> None:
    one_line_error(run_cli("run", *args, cwd=tmp_path, timeout=120), pattern)


def test_unknown_command_is_one_line(tmp_path: Path) -> None:
    one_line_error(run_cli("nosuch", cwd=tmp_path), r"No such command 'nosuch'; see")


def test_help_still_works(tmp_path: Path) -> None:
    result = run_cli("run", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Usage: fleetbench run" in result.stdout
