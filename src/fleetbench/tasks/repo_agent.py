"""The agent loop of a repository task: one action per turn, in plain text or as tool calls.

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

Where the backend can send OpenAI tools (``Actions`` ``"tools"``), the same three actions
are the functions of ``TOOLS`` instead: the model's ``tool_calls`` are run in order and
each is answered by a ``role: tool`` message naming its ``tool_call_id``. A call that
cannot be run (unknown tool, arguments that are not the JSON object asked for) is
answered with what was wrong; a reply whose calls were all unusable, or that called
none, counts as a reply without an action.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fleetbench.backends.base import GenerationResult, Message, TokenSource, ToolCall
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

TOOLS_SYSTEM_PROMPT = """\
You are a software engineer working in a repository, through a shell. Act by calling \
the tools, one call at a time:

1. bash: run one shell command in the repository folder; you get its exit code and \
output back.
2. done: call it when the task is complete.
3. ask_human: only if you cannot go on without help.

Rules: no interactive programs (no editors, no pagers); edit files with shell commands \
(e.g. sed -i, or cat > FILE <<'EOF' ... EOF); there is no network. Look at the files \
first, then change them, then check your change, then call done."""

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "bash",
        "description": "Run one shell command in the repository folder (no network, no "
                       "interactive programs); returns its exit code and output.",
        "parameters": {"type": "object", "properties": {
            "command": {"type": "string", "description": "the shell command"}},
            "required": ["command"]}}},
    {"type": "function", "function": {
        "name": "done",
        "description": "Say that the task is complete; ends the session.",
        "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {
        "name": "ask_human",
        "description": "Ask a human a question, only if you cannot go on without help.",
        "parameters": {"type": "object", "properties": {
            "question": {"type": "string", "description": "the question"}},
            "required": ["question"]}}},
]  # fmt: skip
TOOL_NAMES = tuple(t["function"]["name"] for t in TOOLS)

TOOLS_REMINDER = (
    "You called no tool. Call bash with one shell command, or done when the task is complete."
)

FORMAT_REMINDER = (
    "I found no action in your reply. Reply with exactly one fenced ```bash block holding "
    "one shell command, or DONE on a line of its own when the task is complete."
)

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_ASK = re.compile(r"^[ \t>*_`]*ask_human[ \t]*:[ \t]*(.+)$", re.M | re.I)
_DONE = re.compile(r"^[ \t>*_`]*DONE[ \t.!*_`]*$", re.M)
_SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh", ""}


Actions = Literal["text", "tools"]  # how the model states its actions


@dataclass(frozen=True)
class Action:
    kind: Literal["bash", "done", "ask_human", "none"]
    text: str = ""  # the command or the question; for "none" from a tool call, why


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


def tool_action(call: ToolCall) -> Action:
    """The action a tool call asks for; ``none`` (with what was wrong) when it names
    no known tool or its arguments are not the JSON object that tool takes."""
    name, raw = call.function.name, call.function.arguments.strip()
    if name not in TOOL_NAMES:
        return Action("none", f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")
    try:
        args = json.loads(raw) if raw else {}
    except ValueError as exc:
        return Action("none", f"the arguments of {name} are not valid JSON ({exc})")
    if not isinstance(args, dict):
        return Action("none", f"the arguments of {name} must be a JSON object")
    if name == "done":
        return Action("done")
    key = "command" if name == "bash" else "question"
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        return Action("none", f"{name} needs a non-empty string {key!r}")
    return Action("bash" if name == "bash" else "ask_human", value.strip())


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
    messages: list[Message],
    chat: ChatFn,
    workspace: Path,
    limits: LoopLimits,
    actions: Actions = "text",
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
        result = chat(state.messages, TOOLS) if actions == "tools" else chat(state.messages)
        state.add(result)
        if result.error:
            state.end_reason, state.error = "backend_error", result.error
            state.trace.append({"turn": state.turns, "action": "error", "error": result.error})
            break
        state.last_reply = result.text
        turn = _tool_turn if actions == "tools" else _text_turn
        ended = turn(state, result, workspace, limits, deadline)
        if ended == "no_action":
            format_errors += 1
            if format_errors >= limits.max_format_errors:
                state.end_reason = "no_action"
                break
            if actions == "text":
                state.messages.append(Message(role="user", content=FORMAT_REMINDER))
            elif not result.tool_calls:  # unusable calls were answered one by one
                state.messages.append(Message(role="user", content=TOOLS_REMINDER))
            continue
        format_errors = 0
        if ended is not None:
            state.end_reason = ended
            break
    return state


def _text_turn(
    state: LoopState, result: GenerationResult, workspace: Path, limits: LoopLimits,
    deadline: float,
) -> EndReason | Literal["no_action"] | None:  # fmt: skip
    """One plain-text reply: its first action, run; the outcome is the next user turn.
    Returns why the loop ends, ``"no_action"`` for a reply without one, else None."""
    state.messages.append(Message(role="assistant", content=result.text))
    action = parse_action(result.text)
    step: dict[str, Any] = {"turn": state.turns, "action": action.kind}
    state.trace.append(step)
    if state.total_tokens > limits.max_total_tokens:
        return "token_limit"
    if action.kind == "none":
        return "no_action"
    reply, ended = _act(state, action, step, workspace, limits, deadline)
    if reply is not None:
        state.messages.append(Message(role="user", content=reply))
    return ended


def _tool_turn(
    state: LoopState, result: GenerationResult, workspace: Path, limits: LoopLimits,
    deadline: float,
) -> EndReason | Literal["no_action"] | None:  # fmt: skip
    """One reply with tool calls: each run in order and answered by a tool message.
    Returns as ``_text_turn`` does; ``"no_action"`` when no call could be run."""
    calls = result.tool_calls or []
    state.messages.append(Message(role="assistant", content=result.text, tool_calls=calls or None))
    if not calls:
        state.trace.append({"turn": state.turns, "action": "none"})
    if state.total_tokens > limits.max_total_tokens:
        return "token_limit"
    usable = False
    for call in calls:
        action = tool_action(call)
        step: dict[str, Any] = {"turn": state.turns, "action": action.kind,
                                "tool": call.function.name[:100]}  # fmt: skip
        state.trace.append(step)
        if action.kind == "none":
            step["error"] = action.text[:500]
            state.messages.append(
                Message(role="tool", tool_call_id=call.id, content=f"error: {action.text}")
            )
            continue
        usable = True
        reply, ended = _act(state, action, step, workspace, limits, deadline)
        if reply is not None:
            state.messages.append(Message(role="tool", tool_call_id=call.id, content=reply))
        if ended is not None:
            return ended
    return None if usable else "no_action"


def _act(
    state: LoopState, action: Action, step: dict[str, Any], workspace: Path,
    limits: LoopLimits, deadline: float,
) -> tuple[str | None, EndReason | None]:  # fmt: skip
    """Carry out one action: what the model is told back (None: nothing) and why the
    loop ends (None: it goes on)."""
    if action.kind == "done":
        return None, "done"
    if action.kind == "ask_human":
        state.human_interventions += 1
        step["question"] = action.text[:500]
        return HUMAN_REPLY, None
    left = deadline - time.monotonic()
    if left <= 0:
        return None, "timeout"
    state.tool_calls += 1
    wall = min(limits.command_timeout_s, left)
    done = run_shell(action.text, workspace, command_limits(limits, wall))
    step.update(command=action.text[:500], status=done.status, exit_code=done.returncode)
    reply = observation(done, limits.output_chars)
    if workspace_size(workspace) > limits.workspace_bytes:
        return reply, "workspace_limit"
    return reply, None
