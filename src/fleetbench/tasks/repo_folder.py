"""Repository task folders: ``task.md`` (front matter + instructions), ``repo/``, a check.

A folder::

    NAME/
      task.md    ---                      optional YAML front matter:
                 difficulty: easy         free text, shown and grouped by
                 category: docs           the sample's category
                 max_turns: 8             this task's limit (the plan's caps it)
                 timeout_s: 300           likewise (wall seconds for the whole loop)
                 check: pytest -q         shell command; success = exit code 0
                 ---
                 the instructions the model is given
      repo/      the starting files, copied fresh into each sample's workspace
      check.sh   the check as a shell script, when the front matter has no ``check``
      check/     optional hidden files (e.g. tests) copied into the workspace only when
                 the check runs, after the diff is taken: the model cannot edit them

The built-in tasks live in ``tasks/data/repo_tasks``. A bad folder is one ConfigError
line naming the file and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.errors import ConfigError, PlanError
from fleetbench.yamlconf import YamlDocument

BUILTIN_DIR = Path(__file__).with_name("data") / "repo_tasks"
TASK_FILE = "task.md"
CHECK_SCRIPT = "check.sh"
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.S)


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    difficulty: str = ""
    category: str = ""
    max_turns: int | None = Field(None, ge=1, le=500)
    timeout_s: float | None = Field(None, gt=0)
    check: str | None = Field(None, min_length=1, description="shell command; exit 0 = success")


@dataclass(frozen=True)
class RepoTaskSpec:
    """One loaded task folder."""

    name: str
    folder: Path
    instructions: str
    front: FrontMatter
    check: str  # shell text run in the workspace (the check command or check.sh)

    @property
    def repo(self) -> Path:
        return self.folder / "repo"

    @property
    def hidden(self) -> Path:
        return self.folder / "check"


def load_folder(folder: Path) -> RepoTaskSpec:
    """Read and validate one task folder."""
    path = folder / TASK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (a repo task folder needs task.md)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    front = FrontMatter()
    match = _FRONT.match(text)
    if match:
        # A blank first line stands for the opening ``---``: YAML lines match the file's.
        try:
            doc = YamlDocument(path, "\n" + (match.group(1) or ""))
            data = doc.data if doc.data is not None else {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}:2: front matter: expected a mapping of fields")
            front = doc.validate(FrontMatter, data)
        except PlanError as exc:
            raise ConfigError(str(exc)) from None
        text = text[match.end() :]
    instructions = text.strip()
    if not instructions:
        raise ConfigError(f"{path}: instructions: empty; write the task below the front matter")
    if not (folder / "repo").is_dir():
        raise ConfigError(f"{folder / 'repo'}: repo: missing; the task's starting files go there")
    script = folder / CHECK_SCRIPT
    if front.check and script.exists():
        raise ConfigError(f"{path}: check: set in the front matter and as {CHECK_SCRIPT}; "
                          "keep one")  # fmt: skip
    if front.check:
        check = front.check
    elif script.is_file():
        check = script.read_text(encoding="utf-8")
    else:
        raise ConfigError(f"{path}: check: missing; valid: a `check:` command in the front "
                          f"matter or a {CHECK_SCRIPT} beside {TASK_FILE}")  # fmt: skip
    return RepoTaskSpec(folder.name, folder, instructions, front, check)


def builtin_names() -> list[str]:
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / TASK_FILE).is_file())


def load_tasks(names: list[str] | None, path: Path | None) -> list[RepoTaskSpec]:
    """The task folders a plan names: ``path`` (one task folder, or a folder of them),
    else the built-in tasks; ``names`` picks some of them, in its order."""
    if path is None:
        root = BUILTIN_DIR
    elif not path.is_dir():
        raise ConfigError(f"{path}: path: not a folder of repo tasks")
    elif (path / TASK_FILE).exists():
        return _pick([load_folder(path)], names)
    else:
        root = path
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] not in "._")
    if not folders:
        raise ConfigError(f"{root}: path: no task folders found (each needs {TASK_FILE})")
    return _pick([load_folder(p) for p in folders], names)


def _pick(specs: list[RepoTaskSpec], names: list[str] | None) -> list[RepoTaskSpec]:
    if names is None:
        return specs
    by_name = {s.name: s for s in specs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"tasks: unknown repo task {unknown[0]!r}; valid: "
                          f"{', '.join(by_name)}")  # fmt: skip
    if not names:
        raise ConfigError("tasks: empty; name at least one repo task")
    return [by_name[n] for n in dict.fromkeys(names)]
