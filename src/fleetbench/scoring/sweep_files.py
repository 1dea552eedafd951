"""The solution files of a checkpoint sweep: which checkpoint, which format, parsed.

A checkpoint folder is a folder under the sweep's root whose name carries a training
step, recognised exactly as checkpoint discovery does (``catalog.discover.step_of``:
``checkpoint-49``, ``step_98``, ``global_step196``, ...); the walk does not descend
into a checkpoint, and every ``.jsonl`` file below one (recursively, hidden and
symlinked folders skipped) is one of its solution files. Two checkpoints with the same
step would write the same output folder, so that is refused.

A file's format is read from its first object: ``problem_id`` + ``code`` is a
stdin/stdout solutions file (``scoring.code_io``), ``task_id`` + ``completion`` a
HumanEval samples file. A file that cannot be parsed is not an error of the sweep: it
keeps its one-line reason (``FILE:LINE: field: ...``) and is reported and skipped.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fleetbench.catalog.discover import step_of
from fleetbench.errors import ConfigError
from fleetbench.scoring.code_io import IOProblem, IOSolution, read_io_solutions
from fleetbench.scoring.humaneval import (
    HumanEvalProblem,
    HumanEvalSample,
    read_jsonl,
    read_samples,
)
from fleetbench.scoring.wattbot import ScoreInputError

Format = Literal["code_io", "humaneval"]


@dataclass
class SolutionFile:
    step: int
    checkpoint: str  # the checkpoint folder, relative to the root
    file: str  # the file, relative to its checkpoint folder
    path: Path
    format: Format | None = None
    io: list[IOSolution] = field(default_factory=list)
    humaneval: list[HumanEvalSample] = field(default_factory=list)
    error: str = ""

    @property
    def count(self) -> int:
        return len(self.io) or len(self.humaneval)

    @property
    def out_name(self) -> str:
        """``eval_<file>.json``: the relative path flattened, ``.jsonl`` dropped."""
        stem = self.file[: -len(".jsonl")] if self.file.endswith(".jsonl") else self.file
        return f"eval_{stem.replace('/', '__')}.json"

    @property
    def out_rel(self) -> str:
        return f"eval_checkpoint_{self.step}/{self.out_name}"


def _walk(folder: Path, base: Path, found: list[tuple[int, str, Path]]) -> None:
    try:
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot read folder: {exc.strerror or exc}") from None
    for child in children:
        if child.name.startswith(".") or not child.is_dir(follow_symlinks=False):
            continue
        step = step_of(child.name)
        path = Path(child.path)
        if step is None:
            _walk(path, base, found)
        else:
            found.append((step, path.relative_to(base).as_posix(), path))


def _jsonl_files(folder: Path) -> list[Path]:
    out = []
    for here, dirs, files in os.walk(folder):  # os.walk does not follow symlinked folders
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(here, f) for f in sorted(files) if f.endswith(".jsonl") and f[0] != "."]
    return sorted(out)


def discover_files(root: Path) -> list[SolutionFile]:
    """Every solution file under ``root``'s checkpoints, in step order (unparsed)."""
    if not root.is_dir():
        raise ConfigError(f"--solutions-dir {root}: not a folder")
    found: list[tuple[int, str, Path]] = []
    _walk(root, root, found)
    if not found:
        raise ConfigError(f"--solutions-dir {root}: no checkpoint folders (named like "
                          "checkpoint-N, step_N, global_stepN, iter_N or epoch-N)")  # fmt: skip
    found.sort()
    for (step, rel, _), (step2, rel2, _) in itertools.pairwise(found):
        if step == step2:
            raise ConfigError(f"--solutions-dir {root}: {rel} and {rel2} are both step {step}; "
                              "score them as separate sweeps")  # fmt: skip
    files = [SolutionFile(step, rel, p.relative_to(path).as_posix(), p)
             for step, rel, path in found for p in _jsonl_files(path)]  # fmt: skip
    if not files:
        raise ConfigError(f"--solutions-dir {root}: no .jsonl solution files in its checkpoints")
    return files


def sniff(path: Path) -> Format:
    """The format of a solutions file, from its first object."""
    for number, obj in read_jsonl(path):
        if isinstance(obj, dict) and "problem_id" in obj:
            return "code_io"
        if isinstance(obj, dict) and "task_id" in obj:
            return "humaneval"
        raise ScoreInputError(f"{path}:{number}: expected an object with problem_id and code "
                              "(stdin/stdout) or task_id and completion (HumanEval)")  # fmt: skip
    raise ScoreInputError(f"{path}: no solutions")


def parse(
    solution_file: SolutionFile,
    io_problems: dict[str, IOProblem] | None,
    he_problems: dict[str, HumanEvalProblem] | None,
    why_no_problems: str = "needs --problems FILE",
) -> None:
    """Fill in the file's format and solutions, or its one-line ``error``.
    ``why_no_problems`` says why a format's problems are missing (None above)."""
    path = solution_file.path
    try:
        solution_file.format = sniff(path)
        if solution_file.format == "code_io":
            if io_problems is None:
                raise ScoreInputError(f"{path}: stdin/stdout solutions {why_no_problems}")
            solution_file.io = read_io_solutions(path, io_problems)
        else:
            if he_problems is None:
                raise ScoreInputError(f"{path}: HumanEval samples {why_no_problems}")
            solution_file.humaneval = read_samples(path, he_problems)
    except ScoreInputError as exc:
        solution_file.error = str(exc)
