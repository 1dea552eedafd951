"""What `fleetbench run` pays before its first run starts: only the modules a batch
needs (no report page, charts, dashboard, Ray, sandbox), and workers forked from one
zygote in a sequential batch as in a parallel one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import cli_env, db_rows

# Imported by other commands or at a batch's end, never before its first run.
NOT_AT_START = (
    "altair", "vl_convert", "jinja2", "ray", "starlette", "uvicorn", "httpx", "numpy",
    "fleetbench.dashboard", "fleetbench.report.page", "fleetbench.report.exports",
    "fleetbench.report.aggregate", "fleetbench.cli.tables", "fleetbench.cli.audit",
    "fleetbench.cli.score", "fleetbench.cli.schedule", "fleetbench.sandbox",
    "fleetbench.scoring.humaneval", "fleetbench.backends.managed", "fleetbench.backends.engine",
    "asyncio", "fleetbench.report.master",
)  # fmt: skip
# A zygote's workers fork from these modules: no thread, no native library, no CUDA.
NOT_IN_ZYGOTE = ("llama_cpp", "torch", "ray", "httpx", "numpy", "altair", "vl_convert")


def _imported(code: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _found(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_run_imports_only_what_a_batch_needs_before_its_first_run() -> None:
    # The command's modules, and the batch's up to its executor starting the first run.
    modules = _imported(
        "import json, sys\n"
        "from fleetbench import cli\n"
        "cli.add_commands(['run', 'plan.yaml'])\n"
        "import fleetbench.runner.batch, fleetbench.runner.executors.local\n"
        "import fleetbench.runner.executors.sequential, fleetbench.tasks.textgen\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    assert "fleetbench.cli.run" in modules and "fleetbench.runner.plan" in modules
    assert _found(modules, NOT_AT_START) == []
    # `fleetbench report` still finds its own command (each loads on demand).
    report = _imported(
        "import json, sys\nfrom fleetbench import cli\ncli.add_commands(['report'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    assert "fleetbench.cli.report" in report and "fleetbench.cli.run" in report
    assert "fleetbench.cli.dashboard" not in report


def test_zygote_preload_imports_no_heavy_library_and_starts_no_thread() -> None:
    modules = _imported(
        "import json, os, sys\n"
        "import importlib\n"
        "from fleetbench.runner import worker\n"
        "from fleetbench.tasks import TASKS\n"
        "for _ in worker.preload(): pass\n"
        "for target in TASKS.builtin.values():\n"  # any of them, asked for by a batch
        "    importlib.import_module(target.partition(':')[0])\n"
        "assert len(os.listdir('/proc/self/task')) == 1, os.listdir('/proc/self/task')\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    assert "fleetbench.tasks.textgen" in modules and "fleetbench.tasks.humaneval" in modules
    assert _found(modules, NOT_IN_ZYGOTE) == []


def test_sequential_batch_forks_its_workers_from_one_zygote(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(2)))
    plan = {
        "models": [{"name": f"m{i}", "backend": "fakebackends:ParentBackend"} for i in range(3)],
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
        "energy": {"idle_baseline_s": 0},
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetbench", "run", "plan.yaml", "-o", "out"],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    parents = {
        r["output_text"] for r in db_rows(tmp_path / "out", "SELECT output_text FROM samples")
    }
    # One parent for every worker of the batch, and not the batch itself: the zygote.
    assert len(parents) == 1 and parents != {str(proc.pid)}
    attempts = db_rows(tmp_path / "out", "SELECT status FROM attempts")
    assert [a["status"] for a in attempts] == ["completed"] * 3
