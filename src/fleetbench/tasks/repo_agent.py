"""The agent loop of a repository task: one action per turn, in plain text.

In the spirit of mini-swe-agent: the model's reply holds one action, and a small model
can follow the format:

* a fenced ```` ```bash ```` block (``sh``, ``shell`` or no language also do): one shell
  command, run in the workspace through the sandbox; its exit code and output (cut to
  ``output_chars``) come back as the next user message;
* ``ask_human: QUESTION`` on a line of its own: counted as a human intervention and, in
  batch mode, answered with ``HUMAN_REPLY``;
* ``DONE`` on a line of its own (or a ```` ```done ```` block): the model says it is
  finished.

A reply with no action gets a reminder of the format; ``max_format_errors`` such replies
in a row end the loop. Every loop ends with one of ``END_REASONS``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fleetbench.backends.base import GenerationResult, Message, TokenSource
from fleetbench.sandbox import SandboxLimits, SandboxResult, run_command
from fleetbench.tasks.base import ChatFn

END_REASONS = ("done", "max_turns", "timeout", "token_limit", "no_action", "backend_error",
               "workspace_limit")  # fmt: skip
EndReason = Literal[
    "done", "max_turns", "timeout", "token_limit", "no_action", "backend_error", "workspace_limit"
]
HUMAN_REPLY = "No human is available in batch mode: decide yourself and continue."
SHELL = "/bin/sh"

SYSTEM_PROMPT = """\
You are a software engineer working in a repository, through a shell. Each reply you \
write must contain exactly ONE action, in one of these forms:

1. One shell command in a fenced bash block; it runs in the repository folder and you \
get its exit code and output back:
```bash
cat README.md
```
2. When the task is complete, the word DONE on a line of its own.
3. Only if you cannot go on without help: a line `ask_human: your question`.

Rules: one command per reply; no interactive programs (no editors, no pagers); edit \
files with shell commands (e.g. sed -i, or cat > FILE <<'EOF' ... EOF); there is no \
network. Look at the files first, then change them, then check your change, then say \
DONE."""

FORMAT_REMINDER = (
    "I found no action in your reply. Reply with exactly one fenced ```bash block holding "
    "one shell command, or DONE on a line of its own when the task is complete."
)

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_ASK = re.compile(r"^[ \t>*_`]*ask_human[ \t]*:[ \t]*(.+)$", re.M | re.I)
_DONE = re.compile(r"^[ \t>*_`]*DONE[ \t.!*_`]*$", re.M)
_SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh", ""}


@dataclass(frozen=True)
class Action:
    kind: Literal["bash", "done", "ask_human", "none"]
    text: str = ""  # the command or the question


def parse_action(reply: str) -> Action:
    """The first action in ``reply``: a shell block, else a question, else DONE."""
    for match in _FENCE.finditer(reply):
        lang, body = match.group(1).lower(), match.group(2).strip()
        if lang == "done":
            return Action("done")
        if lang in _SHELL_LANGS and body:
            lines = [line.removeprefix("$ ") for line in body.splitlines()]
            return Action("bash", "\n".join(lines))
    if ask := _ASK.search(reply):
        return Action("ask_human", ask.group(1).strip())
    if _DONE.search(reply):
        return Action("done")
    return Action("none")


@dataclass(frozen=True)
class LoopLimits:
    max_turns: int = 20
    timeout_s: float = 600.0  # wall clock for the whole loop (commands included)
    max_total_tokens: int = 100_000  # prompt + completion, summed over the turns
    output_chars: int = 2000  # of each command's output returned to the model
    command_timeout_s: float = 30.0
    workspace_bytes: int = 64 * 2**20
    max_format_errors: int = 3


@dataclass
class LoopState:
    """What the loop measured; becomes the sample's result and scores."""

    messages: list[Message]
    turns: int = 0  # prompts sent to the model
    tool_calls: int = 0  # shell commands run
    human_interventions: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model_latency_s: float = 0.0
    ttft_s: float | None = None
    token_source: TokenSource | None = None
    end_reason: EndReason = "max_turns"
    error: str | None = None
    last_reply: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    def add(self, result: GenerationResult) -> None:
        self.turns += 1
        self.model_latency_s += result.latency_s or 0.0
        if self.ttft_s is None:
            self.ttft_s = result.ttft_s
        self.token_source = result.token_source or self.token_source
        for name in ("prompt_tokens", "completion_tokens"):
            value = getattr(result, name)
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + value)


def command_limits(limits: LoopLimits, wall_s: float) -> SandboxLimits:
    return SandboxLimits(
        wall_s=max(wall_s, 1.0),
        cpu_s=max(wall_s, 1.0),
        output_bytes=max(limits.output_chars * 8, 64 * 1024),
        processes=64,
    )


def run_shell(command: str, workspace: Path, limits: SandboxLimits) -> SandboxResult:
    return run_command([SHELL, "-c", command], workspace, limits)


def observation(result: SandboxResult, output_chars: int) -> str:
    """The command's outcome as the model sees it: exit code (or why it was stopped)
    and the combined output, cut to ``output_chars``."""
    out = result.stdout + (("\n" if result.stdout else "") + result.stderr if result.stderr else "")
    cut = len(out) > output_chars or result.stdout_truncated or result.stderr_truncated
    out = out[:output_chars] + (f"\n[output truncated to {output_chars} characters]" if cut else "")
    if result.returncode is not None and result.status in ("passed", "failed"):
        head = f"exit code {result.returncode}"
    else:
        head = f"command stopped: {result.reason}"
    return f"{head}\n{out}" if out.strip() else f"{head} (no output)"


def workspace_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def run_loop(
    messages: list[Message], chat: ChatFn, workspace: Path, limits: LoopLimits
) -> LoopState:
    """Talk to the model until it is done or a limit ends the loop."""
    state = LoopState(messages=list(messages))
    deadline = time.monotonic() + limits.timeout_s
    format_errors = 0
    while True:
        if state.turns >= limits.max_turns:
            state.end_reason = "max_turns"
            break
        if time.monotonic() >= deadline:
            state.end_reason = "timeout"
            break
        result = chat(state.messages)
        state.add(result)
        if result.error:
            state.end_reason, state.error = "backend_error", result.error
            state.trace.append({"turn": state.turns, "action": "error", "error": result.error})
            break
        state.last_reply = result.text
        state.messages.append(Message(role="assistant", content=result.text))
        action = parse_action(result.text)
        step: dict[str, Any] = {"turn": state.turns, "action": action.kind}
        state.trace.append(step)
        if state.total_tokens > limits.max_total_tokens:
            state.end_reason = "token_limit"
            break
        if action.kind == "done":
            state.end_reason = "done"
            break
        if action.kind == "none":
            format_errors += 1
            if format_errors >= limits.max_format_errors:
                state.end_reason = "no_action"
                break
            state.messages.append(Message(role="user", content=FORMAT_REMINDER))
            continue
        format_errors = 0
        if action.kind == "ask_human":
            state.human_interventions += 1
            step["question"] = action.text[:500]
            state.messages.append(Message(role="user", content=HUMAN_REPLY))
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            state.end_reason = "timeout"
            break
        state.tool_calls += 1
        wall = min(limits.command_timeout_s, left)
        done = run_shell(action.text, workspace, command_limits(limits, wall))
        step.update(command=action.text[:500], status=done.status, exit_code=done.returncode)
        state.messages.append(Message(role="user", content=observation(done, limits.output_chars)))
        if workspace_size(workspace) > limits.workspace_bytes:
            state.end_reason = "workspace_limit"
            break
    return state
