"""GPU truth: prove fleetbench's GPU paths on a real GPU in one go (issue 16).

On a machine with an NVIDIA GPU (torch with CUDA, nvidia-ml-py; no network):

1. **Meter agreement** — a load of known shape (bf16 matrix products for ``--load-s``,
   then idle, twice) measured at once by fleetbench's ``nvml-counter`` meter, its
   ``nvml-polling`` meter (20 Hz, the counter hidden from it), and independent readings:
   NVML's total-energy counter read directly by this script, and nvidia-smi's power
   samples integrated here. Targets: counter vs direct within 1 %, polling vs counter
   within 3 %. Also the idle power the baseline found, and the net energy.
2. **fleetbench end to end on CUDA** — a small Llama model with random weights and a
   tokenizer built from a local vocabulary (nothing downloaded) through ``fleetbench
   run`` with the transformers backend on ``cuda``: energy method, net GPU Wh > 0, GPU
   names, peak GPU memory vs torch's peak + the CUDA context, tokens/s.
3. **Fit check and placement** against the GPU's real free memory: an entry that fits
   runs, one sized (``params_b``) far beyond it is skipped; with ``--parallel 2`` each
   worker's ``CUDA_VISIBLE_DEVICES`` is the GPU it was given.
4. **The unit tests on the GPU host**: ``pytest tests/unit -q``.

Without a GPU (or with ``--cpu``) it runs its self-test: the model builder and fleetbench
on the CPU, the meters saying why there is no GPU, the same table and JSON.

    PYTHONPATH=src python3 benchmarks/gpu_validate.py [--cpu] [--quick] [--no-pytest]

Prints one table; writes it as JSON to ``$OUT/gpu_validate.json`` when ``OUT`` is set.
Exit 0 when every target is met.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_VOCABULARY = (
    "the a an of to in is it you that he was for on are with as I his they be at one have "
    "this from or had by hot word but what some we can out other were all there when up "
    "use your how said each she which do their time if will way about many then them "
    "write would like so these her long make thing see him two has look more day could go "
    "come did number sound no most people my over know water than call first who may down "
    "side been now find hello colour animal fruit goodbye name say assistant user system "
    ": . , !"
)
WORDS = _VOCABULARY.split()  # the tokenizer's whole vocabulary, specials aside
PROMPTS = [f"say {w} and name a {v} ." for w, v in zip(WORDS[:20], WORDS[20:40], strict=True)]


class Table:
    """The one table the script prints (and writes as JSON)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, check: str, value: Any, target: str = "", ok: bool | None = None) -> None:
        self.rows.append({"check": check, "value": value, "target": target, "ok": ok})

    def print(self) -> None:
        width = max(len(r["check"]) for r in self.rows)
        for r in self.rows:
            mark = {True: "PASS", False: "FAIL", None: "    "}[r["ok"]]
            value = f"{r['value']:.4g}" if isinstance(r["value"], float) else str(r["value"])
            print(f"{mark}  {r['check']:<{width}}  {value:<30} {r['target']}")

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["ok"] is False]


# -- 1. meters -----------------------------------------------------------------------
class _NoCounter:
    """pynvml with the total-energy counter hidden: fleetbench then polls power."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    def __getattr__(self, name: str) -> Any:
        if name == "nvmlDeviceGetTotalEnergyConsumption":
            raise AttributeError(name)
        return getattr(self._nvml, name)

    def nvmlShutdown(self) -> None:  # the shared NVML session stays up for the others
        pass


class _SmiPower:
    """nvidia-smi's power samples of GPU 0, integrated (trapezoid) by this script."""

    def __init__(self, period_ms: int = 50) -> None:
        self.samples: list[tuple[float, float]] = []
        exe = shutil.which("nvidia-smi")
        self._proc: subprocess.Popen[str] | None = None
        if exe:
            self._proc = subprocess.Popen(
                [exe, "--query-gpu=power.draw", "--format=csv,noheader,nounits",
                 f"-lms={period_ms}", "-i", "0"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append((time.monotonic(), float(line.strip())))
            except ValueError:
                continue

    def joules(self, t0: float, t1: float) -> float | None:
        pts = [(t, w) for t, w in self.samples if t0 <= t <= t1]
        if len(pts) < 2:
            return None
        return sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in itertools.pairwise(pts))

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()


def meter_agreement(table: Table, load_s: float, idle_s: float, cycles: int) -> None:
    import pynvml
    import torch

    from fleetbench.meters.monitor import EnergyMonitor, MeterSettings

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    counter = EnergyMonitor.probe(MeterSettings(poll_hz=20.0))
    polling = EnergyMonitor.probe(MeterSettings(poll_hz=20.0, nvml=_NoCounter(pynvml)))
    methods = {d.method for m in (counter, polling) for mm in m.meters for d in mm.devices}
    table.add("meters", ", ".join(sorted(methods)))
    idle_w = counter.measure_idle(5.0)
    polling.idle_w, polling.idle_s = dict(idle_w), counter.idle_s  # one baseline for both
    table.add("idle power (baseline, W)", idle_w.get("gpu0"))
    smi = _SmiPower()
    time.sleep(0.5)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    t0, mj0 = time.monotonic(), pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    m_counter, m_polling = counter.begin(), polling.begin()
    for _ in range(cycles):
        end = time.monotonic() + load_s
        while time.monotonic() < end:
            for _ in range(20):
                a @ b
            torch.cuda.synchronize()
        time.sleep(idle_s)
    r_counter, r_polling = counter.end(m_counter), polling.end(m_polling)
    t1, mj1 = time.monotonic(), pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    smi.stop()
    direct = (mj1 - mj0) / 1000.0
    by_counter, by_polling = _gpu_j(r_counter, net=False), _gpu_j(r_polling, net=False)
    smi_j = smi.joules(t0, t1)
    table.add("window (s)", t1 - t0)
    table.add("nvml-counter gross (J)", by_counter)
    table.add("nvml-polling gross (J)", by_polling)
    table.add("NVML counter read directly (J)", direct)
    table.add("nvidia-smi integrated (J)", smi_j if smi_j is not None else "no nvidia-smi")
    table.add("net of idle, counter (J)", _gpu_j(r_counter, net=True))
    table.add("counter / direct", _ratio(by_counter, direct), "within 1 %",
              _within(by_counter, direct, 0.01))  # fmt: skip
    table.add("polling / counter", _ratio(by_polling, by_counter), "within 3 %",
              _within(by_polling, by_counter, 0.03))  # fmt: skip
    if smi_j is not None:
        table.add("counter / nvidia-smi", _ratio(by_counter, smi_j), "(reported)")
    counter.close()
    polling.close()
    del a, b
    torch.cuda.empty_cache()


def _gpu_j(reading: Any, *, net: bool) -> float | None:
    wh = reading.wh("gpu", net=net)
    return None if wh is None else float(wh) * 3600.0


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _within(a: float | None, b: float | None, tolerance: float) -> bool:
    r = _ratio(a, b)
    return r is not None and abs(r - 1.0) <= tolerance


# -- 2. a model of our own -----------------------------------------------------------
def build_model(folder: Path, *, hidden: int, layers: int) -> Path:
    """A Llama with random weights and a word-level tokenizer over ``WORDS``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(WORDS)))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant : {% endif %}"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
        max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def write_plan(folder: Path, model: Path, device: str, entries: list[dict[str, Any]]) -> Path:
    import yaml

    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    models = [
        {"backend": "transformers", "params_b": 0.03,
         "options": {"model_path": str(model), "device": device, "dtype": dtype}, **entry}
        for entry in entries
    ]  # fmt: skip
    plan = {
        "name": "gpu-validate",
        "models": models,
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
        "generation": {"max_tokens": 32, "min_tokens": 16, "temperature": 0.0},
        "energy": {"idle_baseline_s": 2},
    }
    path = folder / f"plan-{len(list(folder.glob('plan-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def fleetbench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "fleetbench", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def master_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "master_results.csv", newline="") as f:
        return list(csv.DictReader(f))


def end_to_end(table: Table, work: Path, model: Path, device: str, context_mb: float) -> None:
    plan = write_plan(work, model, device, [{"name": "tiny-llama"}])
    out = work / "out-e2e"
    proc = fleetbench("run", str(plan), "-o", str(out))
    table.add("fleetbench run exit code", proc.returncode, "0", proc.returncode == 0)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        return
    row = master_rows(out)[0]
    gpu = device.startswith("cuda")
    method = row.get("energy_method", "")
    table.add("energy_method", method, "nvml-counter" if gpu else "(no GPU)",
              ("nvml-counter" in method) if gpu else None)  # fmt: skip
    gpu_wh = _float(row.get("gpu_energy_wh"))
    positive = gpu_wh is not None and gpu_wh > 0
    table.add("gpu_energy_wh (net)", gpu_wh if gpu_wh is not None else "empty",
              "> 0" if gpu else "", positive if gpu else None)  # fmt: skip
    table.add("gpu_names", row.get("gpu_names") or "empty", "filled" if gpu else "",
              bool(row.get("gpu_names")) if gpu else None)  # fmt: skip
    if not gpu:
        reason = row.get("energy_unmeasured_reason", "")
        table.add("why no GPU energy", reason[:60], "names the GPU", "gpu" in reason.lower())
    tps = _float(row.get("throughput_tokens_per_second"))
    table.add("tokens/s", tps if tps is not None else "empty", "> 0", bool(tps and tps > 0))
    if gpu:
        peak = _float(row.get("peak_gpu_memory_mb"))
        torch_peak = _torch_peak(out)
        expected = None if torch_peak is None else torch_peak + context_mb
        table.add("peak_gpu_memory_mb", peak if peak is not None else "empty")
        table.add("torch peak + CUDA context (MB)", expected if expected is not None else "empty")
        table.add("peak / (torch + context)", _ratio(peak, expected), "within 10 %",
                  _within(peak, expected, 0.10))  # fmt: skip


def _torch_peak(out: Path) -> float | None:
    db = sqlite3.connect(out / "fleetbench.db")
    try:
        rows = db.execute("SELECT energy_json FROM attempts WHERE energy_json IS NOT NULL")
        for (text,) in rows:
            value = (json.loads(text).get("peak_gpu_memory_mb") or {}).get("torch")
            if value is not None:
                return float(value)
    finally:
        db.close()
    return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def cuda_context_mb() -> float:
    """GPU memory a process holds for the CUDA context alone (NVML's view minus torch's)."""
    import pynvml
    import torch

    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    used = sum(
        p.usedGpuMemory or 0
        for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        if p.pid == os.getpid()
    )
    return float(used - torch.cuda.memory_reserved()) / 2**20


# -- 3. fit check and placement --------------------------------------------------------
def fit_and_placement(table: Table, work: Path, model: Path, device: str) -> None:
    gpu = device.startswith("cuda")
    # weights on disk win over params_b in the estimate: the big one names none
    big = {"name": "too-big", "params_b": 100_000.0}  # 200 TB in bf16
    plan = write_plan(work, model, device, [{"name": "fits"}, big])
    _without_weights(plan, "too-big", work / "no-such-weights")
    dry = fleetbench("run", str(plan), "--dry-run", "-o", str(work / "out-fit"))
    lines = dry.stdout.splitlines()
    fits = any("fits" in ln and " run " in ln for ln in lines)
    skipped = any("too-big" in ln and " skip " in ln for ln in lines)
    table.add("fit check: small entry runs", fits, "run", fits)
    table.add("fit check: 100,000B entry skipped", skipped, "skip", skipped)
    plan = write_plan(work, model, device, [{"name": "slot-a"}, {"name": "slot-b"}])
    out = work / "out-parallel"
    proc = fleetbench("run", str(plan), "-o", str(out), "--parallel", "2", "--limit", "2")
    table.add("parallel run exit code", proc.returncode, "0", proc.returncode == 0)
    db = sqlite3.connect(out / "fleetbench.db")
    try:
        seen = list(db.execute("SELECT slot, cuda_visible_devices FROM attempts"))
    finally:
        db.close()
    table.add("slot: CUDA_VISIBLE_DEVICES", "; ".join(f"{s}={c}" for s, c in seen) or "none")
    if gpu:
        ok = len(seen) == 2 and all(c and str(c).startswith("GPU-") for _, c in seen)
        table.add("each worker pinned to its GPU", ok, "a UUID per attempt", ok)
    else:
        ok = len(seen) == 2 and {s for s, _ in seen} == {"cpu 1", "cpu 2"}
        table.add("two CPU slots", ok, "cpu 1, cpu 2", ok)


def _without_weights(plan: Path, name: str, missing: Path) -> None:
    import yaml

    data = yaml.safe_load(plan.read_text())
    for entry in data["models"]:
        if entry["name"] == name:
            entry["options"]["model_path"] = str(missing)
    plan.write_text(yaml.safe_dump(data, sort_keys=False))


# -- 4. unit tests ---------------------------------------------------------------------
def unit_tests(table: Table) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    table.add("pytest tests/unit", summary[:60], "passes", proc.returncode == 0)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")


# -- main ------------------------------------------------------------------------------
def has_gpu() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed"
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return False, f"NVML: {exc}"
    return True, str(torch.cuda.get_device_name(0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="the CPU self-test, even on a GPU")
    parser.add_argument("--quick", action="store_true", help="short meter load (smoke test)")
    parser.add_argument("--no-pytest", action="store_true", help="skip tests/unit")
    args = parser.parse_args()
    started = time.monotonic()
    table = Table()
    gpu, what = has_gpu()
    gpu = gpu and not args.cpu
    table.add("device", what if gpu else f"CPU self-test ({what})")
    work = Path(tempfile.mkdtemp(prefix="gpu-validate-"))
    try:
        if gpu:
            load, idle = (3.0, 2.0) if args.quick else (20.0, 10.0)
            meter_agreement(table, load, idle, cycles=1 if args.quick else 2)
        else:
            from fleetbench.meters.monitor import EnergyMonitor, MeterSettings

            monitor = EnergyMonitor.probe(MeterSettings())
            why = monitor.unmeasured.get("gpu", "")
            table.add("meters: why no GPU", why or "?", "a reason", bool(why))
            monitor.close()
        hidden, layers = (512, 4) if gpu else (64, 2)
        model = build_model(work / "tiny-llama", hidden=hidden, layers=layers)
        table.add("model built", f"llama {layers} x {hidden}, {len(set(WORDS)) + 3} tokens")
        device = "cuda" if gpu else "cpu"
        end_to_end(table, work, model, device, cuda_context_mb() if gpu else 0.0)
        fit_and_placement(table, work, model, device)
        if gpu and not args.no_pytest:
            unit_tests(table)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table.add("wall time (s)", time.monotonic() - started, "< 480")
    table.print()
    if out := os.environ.get("OUT"):
        Path(out).mkdir(parents=True, exist_ok=True)
        document = {"gpu": gpu, "date": time.strftime("%Y-%m-%d"), "rows": table.rows}
        (Path(out) / "gpu_validate.json").write_text(json.dumps(document, indent=2) + "\n")
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
