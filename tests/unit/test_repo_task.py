"""``repo_task`` pieces: the built-in tasks' checks, the action format, diff statistics,
task folders (and their one-line errors), the loop's end reasons."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA

from fleetbench.backends.base import FunctionCall, GenerationResult, Message, ToolCall
from fleetbench.errors import ConfigError
from fleetbench.sandbox import cgroup, new_workdir, runner
from fleetbench.tasks.repo_agent import TOOLS, TOOLS_REMINDER, LoopLimits, parse_action, run_loop
from fleetbench.tasks.repo_diff import diff_trees
from fleetbench.tasks.repo_folder import builtin_names, load_folder, load_tasks
from fleetbench.tasks.repo_task import RepoTask, RepoTaskOptions, run_check

REF = DATA / "repo_task_refs"


def _workspace(tmp_path: Path, repo: Path) -> Path:
    workspace = tmp_path / "ws"
    shutil.copytree(repo, workspace)
    return workspace


@pytest.mark.parametrize("name", ["fix_typo", "add_comment", "add_validation", "refactor_metrics"])
def test_builtin_check_fails_before_and_passes_after_the_reference(
    tmp_path: Path, name: str
) -> None:
    (spec,) = load_tasks([name], None)
    before = run_check(spec, _workspace(tmp_path / "a", spec.repo), 60)
    assert before.status == "failed", before.reason
    workspace = _workspace(tmp_path / "b", spec.repo)
    for ref in (REF / name).iterdir():
        shutil.copyfile(ref, workspace / ref.name)
    after = run_check(spec, workspace, 60)
    assert after.status == "passed", after.stdout + after.stderr


def test_builtins_are_the_four_and_samples_carry_their_category() -> None:
    assert builtin_names() == ["add_comment", "add_validation", "fix_typo", "refactor_metrics"]
    samples = RepoTask(RepoTaskOptions()).samples()
    assert [s.id for s in samples] == builtin_names()
    assert samples[2].metadata == {"category": "docs", "difficulty": "easy"}
    messages = RepoTask(RepoTaskOptions()).messages(samples[2], "Be brief.")
    assert "```bash" in messages[0].content and messages[0].content.endswith("Be brief.")
    assert "spelling mistake" in messages[1].content
    (folded,) = RepoTask(RepoTaskOptions(system_as_user=True)).messages(samples[2], None)
    assert folded.role == "user" and folded.content.startswith(messages[0].content[:40])
    assert folded.content.endswith(messages[1].content)


@pytest.mark.parametrize(
    ("reply", "kind", "text"),
    [
        ("Let me look.\n```bash\nls -la\n```\nthen more", "bash", "ls -la"),
        ("```sh\n$ cat a.txt\n```", "bash", "cat a.txt"),
        ("```\npwd\n```", "bash", "pwd"),
        ("```python\nprint(1)\n```\n```bash\nls\n```", "bash", "ls"),
        ("```bash\nls", "bash", "ls"),  # unclosed at the end of the reply
        ("All fixed.\nDONE", "done", ""),
        ("**DONE**", "done", ""),
        ("```done\n```", "done", ""),
        ("ask_human: which file?", "ask_human", "which file?"),
        ("I am done with this", "none", ""),
        ("```python\nprint(1)\n```", "none", ""),
        ("", "none", ""),
    ],
)
def test_parse_action(reply: str, kind: str, text: str) -> None:
    action = parse_action(reply)
    assert (action.kind, action.text) == (kind, text)


def test_diff_stats_are_exact_on_a_known_change(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        (root / "pkg").mkdir(parents=True)
    (before / "a.py").write_text("one\ntwo\nthree\nfour\n")
    (after / "a.py").write_text("one\nTWO\nthree\nfour\nfive\nsix\n")  # 1 changed, 2 added
    (before / "gone.txt").write_text("x\ny\n")  # deleted: 2 removed
    (after / "pkg" / "new.txt").write_text("hello")  # added, no final newline: 1 added
    (before / "same.txt").write_text("same\n")
    (after / "same.txt").write_text("same\n")
    (before / "blob.bin").write_bytes(b"\xff\x00")
    (after / "blob.bin").write_bytes(b"\xff\x01")  # binary: modified, no lines
    (after / "pkg" / "__pycache__").mkdir()
    (after / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\x00")  # a cache: skipped
    stats = diff_trees(before, after)
    assert (stats.files_modified, stats.lines_added, stats.lines_removed) == (4, 4, 3)
    assert "-two\n+TWO\n" in stats.diff and "+five\n+six\n" in stats.diff
    assert "--- a/gone.txt\n+++ /dev/null\n" in stats.diff
    assert "+hello\n\\ No newline at end of file\n" in stats.diff
    assert "Binary files a/blob.bin and b/blob.bin differ" in stats.diff
    assert "__pycache__" not in stats.diff and not stats.diff_truncated
    capped = diff_trees(before, after, cap=10)
    assert capped.diff == stats.diff[:10] and capped.diff_truncated


def _folder(tmp_path: Path, task_md: str | None, check_sh: bool = False, repo: bool = True) -> Path:
    folder = tmp_path / "mytask"
    folder.mkdir(parents=True)
    if task_md is not None:
        (folder / "task.md").write_text(task_md)
    if repo:
        (folder / "repo").mkdir()
    if check_sh:
        (folder / "check.sh").write_text("true\n")
    return folder


def test_a_user_task_folder_loads(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "---\ncategory: ops\nmax_turns: 3\n---\nDo it.\n", check_sh=True)
    spec = load_folder(folder)
    assert (spec.name, spec.instructions, spec.check) == ("mytask", "Do it.", "true\n")
    assert spec.front.max_turns == 3 and spec.front.category == "ops"
    assert [s.name for s in load_tasks(None, folder)] == ["mytask"]  # one folder
    assert [s.name for s in load_tasks(["mytask"], tmp_path)] == ["mytask"]  # a folder of them
    plain = _folder(tmp_path / "p", "No front matter.\n", check_sh=True)
    assert load_folder(plain).instructions == "No front matter."


@pytest.mark.parametrize(
    ("task_md", "check_sh", "repo", "message"),
    [
        (None, True, True, "mytask/task.md: file not found"),
        ("---\nmax_turns: 0\n---\nDo it.\n", True, True,
         "mytask/task.md:2: max_turns: Input should be greater than or equal to 1 (got 0)"),
        ("---\ncategory: a\nturns: 3\n---\nDo it.\n", True, True,
         "mytask/task.md:3: turns: unknown field 'turns'; valid fields: difficulty, category, "
         "max_turns, timeout_s, check"),
        ("---\ncheck: [oops\n---\nDo it.\n", True, True, "mytask/task.md:3:1: invalid YAML"),
        ("---\ncheck: pytest -q\n---\n\n", False, True, "mytask/task.md: instructions: empty"),
        ("Do it.\n", False, True, "mytask/task.md: check: missing; valid: a `check:` command"),
        ("---\ncheck: pytest -q\n---\nDo it.\n", True, True, "check: set in the front matter "
         "and as check.sh; keep one"),
        ("Do it.\n", True, False, "mytask/repo: repo: missing"),
    ],
)  # fmt: skip
def test_a_bad_task_folder_is_one_line_naming_file_and_field(
    tmp_path: Path, task_md: str | None, check_sh: bool, repo: bool, message: str
) -> None:
    folder = _folder(tmp_path, task_md, check_sh, repo)
    with pytest.raises(ConfigError) as info:
        load_tasks(None, tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(folder) in str(info.value)


def test_unknown_task_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="tasks: unknown repo task 'nope'; valid: add_comment, "):
        RepoTask(RepoTaskOptions(tasks=["nope"])).samples()


class Replies:
    """A chat function replaying replies (the loop's own tests; the CLI test uses the
    scripted backend)."""

    def __init__(self, *replies: GenerationResult) -> None:
        self.replies, self.seen = list(replies), 0

    def __call__(self, messages: list[Message]) -> GenerationResult:
        self.seen += 1
        return self.replies.pop(0) if self.replies else GenerationResult(index=0, text="DONE")


def _say(text: str, tokens: int = 10) -> GenerationResult:
    return GenerationResult(index=0, text=text, prompt_tokens=tokens, completion_tokens=tokens)


START = [Message(role="user", content="go")]


@pytest.mark.parametrize(
    ("limits", "replies", "reason", "turns"),
    [
        (LoopLimits(max_turns=2), [_say("```bash\ntrue\n```")] * 5, "max_turns", 2),
        (LoopLimits(max_total_tokens=25), [_say("```bash\ntrue\n```")] * 5, "token_limit", 2),
        (LoopLimits(), [_say("hmm")] * 5, "no_action", 3),
        (LoopLimits(), [_say("hmm"), _say("DONE")], "done", 2),
        (LoopLimits(), [_say("```bash\ntrue\n```"),
                        GenerationResult(index=0, error="HTTP 500")], "backend_error", 2),
        (LoopLimits(timeout_s=1.5, command_timeout_s=10), [_say("```bash\nsleep 5\n```")] * 3,
         "timeout", 1),
        (LoopLimits(workspace_bytes=2**20),
         [_say("```bash\nhead -c 2000000 /dev/zero > big\n```")], "workspace_limit", 1),
    ],
)  # fmt: skip
def test_every_loop_ends_with_its_reason(
    tmp_path: Path, limits: LoopLimits, replies: list[GenerationResult], reason: str, turns: int
) -> None:
    state = run_loop(START, Replies(*replies), tmp_path, limits)
    assert (state.end_reason, state.turns) == (reason, turns)
    if reason == "backend_error":
        assert state.error == "HTTP 500" and state.trace[-1]["action"] == "error"
    if reason == "timeout":
        assert "command stopped: wall-time limit" in state.messages[-1].content


def test_observation_is_truncated_and_ask_human_is_counted(tmp_path: Path) -> None:
    chat = Replies(_say("```bash\nseq 1 5000\n```"), _say("ask_human: ok?"),
                   _say("ask_human: sure?"), _say("DONE"))  # fmt: skip
    state = run_loop(START, chat, tmp_path, LoopLimits(output_chars=100))
    assert (state.end_reason, state.turns, state.tool_calls, state.human_interventions) == (
        "done", 4, 1, 2)  # fmt: skip
    observation = state.messages[2].content
    assert observation.startswith("exit code 0\n1\n2\n3\n")
    assert observation.endswith("[output truncated to 100 characters]")
    assert len(observation) < 160
    assert (state.prompt_tokens, state.completion_tokens) == (40, 40)


def test_a_killed_process_workspace_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(runner, "_cleaned", threading.Event())  # as in a fresh process
    dead = tmp_path / f"{cgroup.PREFIX}999999999-repo-abc"  # above any pid_max
    (dead / "repo").mkdir(parents=True)
    fresh = new_workdir("repo")
    assert not dead.exists()
    assert fresh.parent == tmp_path and fresh.name.startswith(f"{cgroup.PREFIX}{os.getpid()}-repo-")
    new_workdir("repo")
    assert fresh.exists()  # a live process's workspace stays


def _calls(*calls: tuple[str, str]) -> GenerationResult:
    return GenerationResult(index=0, text="", prompt_tokens=10, completion_tokens=10,
                            tool_calls=[ToolCall(id=f"c{i}", function=FunctionCall(
                                name=name, arguments=args)) for i, (name, args) in
                                enumerate(calls)])  # fmt: skip


class ToolReplies(Replies):
    """Replies to a tools-mode loop, which must offer the tools on every call."""

    def __call__(self, messages: list[Message], tools: Any = None) -> GenerationResult:
        assert tools == TOOLS
        return super().__call__(messages)


def test_tool_calls_run_in_order_and_each_is_answered(tmp_path: Path) -> None:
    chat = ToolReplies(
        _calls(("bash", '{"command": "echo hi > f"}'), ("bash", '{"command": "cat f"}')),
        _calls(("ask_human", '{"question": "ok?"}'), ("nope", "{}")),
        _calls(("done", "{}"), ("bash", '{"command": "touch never"}')),
    )
    state = run_loop(START, chat, tmp_path, LoopLimits(), "tools")
    assert (state.end_reason, state.turns, state.tool_calls, state.human_interventions) == (
        "done", 3, 2, 1)  # fmt: skip
    assert not (tmp_path / "never").exists()  # nothing after done runs
    tool_turns = [m for m in state.messages if m.role == "tool"]
    assert [m.tool_call_id for m in tool_turns] == ["c0", "c1", "c0", "c1"]
    assert tool_turns[1].content == "exit code 0\nhi\n"
    assert tool_turns[2].content.startswith("No human is available")
    assert tool_turns[3].content.startswith("error: unknown tool 'nope'")
    assert state.messages[1].tool_calls is not None and state.messages[1].role == "assistant"
    assert [s["action"] for s in state.trace] == ["bash", "bash", "ask_human", "none", "done"]


@pytest.mark.parametrize(
    ("replies", "reason", "turns"),
    [
        ([_calls(("bash", "{not json"))] * 5, "no_action", 3),
        ([_say("I am done.")] * 5, "no_action", 3),  # no call at all: reminded, then ended
        ([_calls(("bash", "[1]")), _calls(("done", "null"))], "no_action", 3),
        ([_calls(("bash", '{"command": 5}')), _calls(("done", ""))], "done", 2),
    ],
)
def test_unusable_tool_calls_end_the_loop_cleanly(
    tmp_path: Path, replies: list[GenerationResult], reason: str, turns: int
) -> None:
    state = run_loop(START, ToolReplies(*replies), tmp_path, LoopLimits(), "tools")
    assert (state.end_reason, state.turns, state.tool_calls) == (reason, turns, 0)
    if not replies[0].tool_calls:
        assert state.messages[-2].content == TOOLS_REMINDER


@pytest.mark.parametrize(
    ("actions", "support", "mode"),
    [("auto", "supported", "tools"), ("auto", "untested", "text"),
     ("auto", "unavailable", "text"), ("tools", "untested", "tools"),
     ("tools", "unavailable", "text"), ("text", "supported", "text"), ("auto", None, "text")],
)  # fmt: skip
def test_actions_follow_the_option_and_what_the_backend_can(
    actions: str, support: str | None, mode: str
) -> None:
    chat = Replies()
    if support is not None:
        chat.tool_support = support  # type: ignore[attr-defined]
    assert RepoTask(RepoTaskOptions(actions=actions)).actions_for(chat) == mode


def test_the_embedded_backend_gets_plain_text_actions(tmp_path: Path) -> None:
    """llamacpp (the embedded model) has no tool_calling hook: the worker's chat says
    unavailable, never sends tools, and the task keeps the plain-text format."""
    from types import SimpleNamespace

    from fleetbench.backends import GenerationRequest, GenerationSettings
    from fleetbench.backends.llamacpp import LlamaCppBackend
    from fleetbench.runner.worker import chat_fn

    sent: list[GenerationRequest] = []

    class Embedded(LlamaCppBackend):
        def __init__(self) -> None:
            pass

        def generate(self, requests: Any) -> Any:
            sent.extend(requests)
            yield GenerationResult(index=0, text="DONE")

    model = SimpleNamespace(prompt_prefix="", prompt_suffix="")
    job = SimpleNamespace(spec=SimpleNamespace(model=model))
    request = GenerationRequest(index=0, messages=START, settings=GenerationSettings())
    chat = chat_fn(job, Embedded(), request)  # type: ignore[arg-type]
    assert chat.tool_support == "unavailable"  # type: ignore[attr-defined]
    task = RepoTask(RepoTaskOptions(tasks=["fix_typo"]))
    (sample,) = task.samples()
    done = task.interact(sample, task.messages(sample, None), chat)
    assert done.scores is not None
    assert (done.scores["actions"], done.scores["end_reason"]) == ("text", "done")
    assert sent and all(r.tools is None for r in sent)
    assert "```bash" in done.messages[0].content
