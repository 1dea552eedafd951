"""``repo_task``: agentic tasks on a small repository, solved through a shell.

Each sample is one task folder (``fleetbench.tasks.repo_folder``): the model works in a
fresh copy of its ``repo/`` through the agent loop (``fleetbench.tasks.repo_agent``),
every command in the sandbox; then the workspace is diffed against the starting repo
(``repo_diff``) and the task's check runs there: success is its exit code 0.

Per sample the scores hold ``solved`` (1/0), ``end_reason``, ``turns`` (prompts sent),
``tool_calls``, ``actions`` (how the model acted: ``text`` or OpenAI ``tools``), tokens,
``wall_s``, ``human_interventions``, ``files_modified``,
``lines_added``, ``lines_removed``, the unified ``diff`` (capped), the check's status and
output tail, and a compact ``trace`` of the actions. The run's metrics: ``success_rate``
and means, plus per-success figures (wall time, prompts, tokens, interventions: total
over the run ÷ tasks solved) that the report ranks repo-task runs by.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.sandbox import SandboxLimits, SandboxResult, new_workdir
from fleetbench.tasks.base import ChatFn, Interaction, Sample, Task
from fleetbench.tasks.repo_agent import (
    SYSTEM_PROMPT,
    TOOLS_SYSTEM_PROMPT,
    Actions,
    LoopLimits,
    run_loop,
    run_shell,
)
from fleetbench.tasks.repo_diff import DIFF_CAP, diff_trees
from fleetbench.tasks.repo_folder import RepoTaskSpec, load_tasks

log = logging.getLogger("fleetbench.tasks.repo_task")

CHECK_TAIL = 1500  # characters of the check's output kept with the sample
USER_PROMPT = (
    "Task:\n{instructions}\n\nThe repository is the current folder of the shell. "
    "Reply with exactly one action."
)


class RepoTaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[str] | None = Field(None, description="task names (default: all of them)")
    path: Path | None = Field(None, description="a task folder or a folder of task folders; "
                              "default: the built-in tasks")  # fmt: skip
    max_turns: int = Field(20, ge=1, le=500, description="prompts per sample (caps the task's own)")
    timeout_s: float = Field(600.0, gt=0, description="wall seconds per sample (caps the task's)")
    max_total_tokens: int = Field(100_000, ge=1, description="prompt + completion per sample")
    output_chars: int = Field(2000, ge=100, le=100_000, description="command output shown")
    command_timeout_s: float = Field(30.0, gt=0, description="wall seconds per command")
    check_timeout_s: float = Field(120.0, gt=0, description="wall seconds for the check")
    workspace_mb: int = Field(64, ge=1, description="largest workspace; bigger ends the loop")
    diff_chars: int = Field(DIFF_CAP, ge=0, description="characters of the diff stored")
    system_prompt: str | None = Field(None, description="added after the action format")
    system_as_user: bool = Field(False, description="the action format opens the first user "
                                 "turn instead (chat templates without a system role)")  # fmt: skip
    actions: Literal["auto", "tools", "text"] = Field(
        "auto", description="how the model acts: OpenAI tool calls, plain-text blocks, or "
        "auto: tools where the backend says the model calls them, else text")  # fmt: skip


class RepoTask(Task):
    name: ClassVar[str] = "repo_task"
    Options: ClassVar[type[BaseModel]] = RepoTaskOptions
    primary_metric: ClassVar[str] = "success_rate"

    def __init__(self, options: RepoTaskOptions) -> None:
        self.options = options
        self._specs: dict[str, RepoTaskSpec] | None = None

    @staticmethod
    def generation_defaults(options: RepoTaskOptions, reasoning: bool) -> dict[str, int]:
        return {"max_tokens": 512, "min_tokens": 0}  # per turn

    @property
    def specs(self) -> dict[str, RepoTaskSpec]:
        if self._specs is None:
            loaded = load_tasks(self.options.tasks, self.options.path)
            self._specs = {s.name: s for s in loaded}
            if len(self._specs) != len(loaded):
                raise ConfigError("path: two repo task folders have the same name")
        return self._specs

    def samples(self) -> list[Sample]:
        return [
            Sample(index=i, id=spec.name, prompt=spec.instructions,
                   metadata={"category": spec.front.category or "repo",
                             "difficulty": spec.front.difficulty})
            for i, spec in enumerate(self.specs.values())
        ]  # fmt: skip

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        extra = self.options.system_prompt or system_prompt
        system = SYSTEM_PROMPT + (f"\n\n{extra}" if extra else "")
        user = USER_PROMPT.format(instructions=sample.prompt)
        if self.options.system_as_user:
            return [Message(role="user", content=f"{system}\n\n{user}")]
        return [Message(role="system", content=system), Message(role="user", content=user)]

    def limits(self, spec: RepoTaskSpec) -> LoopLimits:
        o = self.options
        return LoopLimits(  # the task's own budget, capped by the plan's
            max_turns=min(spec.front.max_turns or o.max_turns, o.max_turns),
            timeout_s=min(spec.front.timeout_s or o.timeout_s, o.timeout_s),
            max_total_tokens=o.max_total_tokens,
            output_chars=o.output_chars,
            command_timeout_s=o.command_timeout_s,
            workspace_bytes=o.workspace_mb * 2**20,
        )

    def actions_for(self, chat: ChatFn) -> Actions:
        """Tools where asked for (``tools``) or known to work (``auto``), if the backend
        can send them at all; else the plain-text format."""
        support = getattr(chat, "tool_support", "unavailable")
        wanted = self.options.actions
        if wanted == "tools" and support == "unavailable":
            log.warning("actions: tools, but this backend cannot send tools: plain-text actions")
        if support == "unavailable" or wanted == "text":
            return "text"
        return "tools" if wanted == "tools" or support == "supported" else "text"

    def interact(self, sample: Sample, messages: list[Message], chat: ChatFn) -> Interaction:
        """Run the loop in a fresh workspace, then diff it and run the check."""
        spec = self.specs[sample.id]
        actions = self.actions_for(chat)
        if actions == "tools":  # the tools replace the text format's explanation
            first = messages[0].content.replace(SYSTEM_PROMPT, TOOLS_SYSTEM_PROMPT, 1)
            messages = [messages[0].model_copy(update={"content": first}), *messages[1:]]
        started, t0 = time.time(), time.monotonic()
        tmp = new_workdir("repo")
        try:
            workspace = tmp / "repo"
            shutil.copytree(spec.repo, workspace, symlinks=True)
            state = run_loop(messages, chat, workspace, self.limits(spec), actions)
            stats = diff_trees(spec.repo, workspace, self.options.diff_chars)
            check = run_check(spec, workspace, self.options.check_timeout_s)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        wall = time.monotonic() - t0
        known = state.prompt_tokens is not None or state.completion_tokens is not None
        scores: dict[str, Any] = {
            "solved": int(check.passed), "end_reason": state.end_reason, "turns": state.turns,
            "tool_calls": state.tool_calls, "actions": actions,
            "human_interventions": state.human_interventions,
            "prompt_tokens": state.prompt_tokens, "completion_tokens": state.completion_tokens,
            "total_tokens": state.total_tokens if known else None, "wall_s": round(wall, 3),
            "files_modified": stats.files_modified, "lines_added": stats.lines_added,
            "lines_removed": stats.lines_removed, "diff": stats.diff,
            "diff_truncated": stats.diff_truncated, "check_status": check.status,
            "check_reason": check.reason, "check_output": _tail(check), "task": spec.name,
            "trace": state.trace,
        }  # fmt: skip
        result = GenerationResult(
            index=sample.index, text=state.last_reply, prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens, latency_s=state.model_latency_s,
            ttft_s=state.ttft_s, finish_reason=state.end_reason, token_source=state.token_source,
            sent_at=started, received_at=time.time(), error=state.error,
        )  # fmt: skip
        return Interaction(result=result, messages=state.messages, scores=scores)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any]:
        """Only reached without the loop (a sample that never ran): unsolved."""
        return {"solved": 0, "end_reason": "backend_error" if result.error else "not_run",
                "task": sample.id}  # fmt: skip

    @staticmethod
    def aggregate_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
        """Success rate and means over the samples that ran; per-success figures (the
        run's total ÷ tasks solved) when any was solved (tokens only when all known)."""
        ran = [s for s in scores if s and "turns" in s]
        if not ran:
            return {}
        n, solved = len(ran), sum(int(s.get("solved") or 0) for s in ran)

        def total(key: str) -> float:
            return sum(float(s.get(key) or 0) for s in ran)

        out = {"success_rate": solved / n, "solved": float(solved), "tasks": float(n)}
        for key in ("turns", "tool_calls", "human_interventions", "wall_s", "files_modified",
                    "lines_added", "lines_removed"):  # fmt: skip
            out[f"mean_{key}" if key != "human_interventions" else key] = total(key) / n
        tokens_known = all(s.get("total_tokens") is not None for s in ran)
        if tokens_known:
            out["mean_tokens"] = total("total_tokens") / n
        if solved:
            out["wall_s_per_success"] = total("wall_s") / solved
            out["prompts_per_success"] = total("turns") / solved
            out["interventions_per_success"] = total("human_interventions") / solved
            if tokens_known:
                out["tokens_per_success"] = total("total_tokens") / solved
        return out


def run_check(spec: RepoTaskSpec, workspace: Path, timeout_s: float) -> SandboxResult:
    """Place the hidden check files, then run the check in the sandbox."""
    if spec.hidden.is_dir():
        place_files(spec.hidden, workspace)
    limits = SandboxLimits(wall_s=timeout_s, cpu_s=timeout_s, processes=64)
    return run_shell(spec.check, workspace, limits)


def place_files(source: Path, workspace: Path) -> None:
    """Copy ``source``'s files into ``workspace``, replacing whatever the model left at
    those paths: a link it planted there is removed, never written through (this runs
    outside the sandbox)."""
    for current, _dirs, files in os.walk(source):
        rel = Path(current).relative_to(source)
        target_dir = workspace
        for part in rel.parts:
            target_dir = target_dir / part
            if target_dir.is_symlink() or (target_dir.exists() and not target_dir.is_dir()):
                target_dir.unlink()
            target_dir.mkdir(exist_ok=True)
        for name in files:
            dest = target_dir / name
            if dest.is_symlink() or dest.is_file():
                dest.unlink()
            elif dest.is_dir():
                shutil.rmtree(dest)
            shutil.copyfile(Path(current, name), dest, follow_symlinks=False)
            dest.chmod(0o644)


def _tail(result: SandboxResult) -> str:
    text = (result.stdout + result.stderr).strip()
    return text[-CHECK_TAIL:]
