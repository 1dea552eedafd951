"""Do fleetbench's serving figures agree with an independent client's?

Starts one real ``python -m llama_cpp.server`` (the embedded SmolLM2 GGUF, 127.0.0.1,
``--interrupt_requests false``) and runs fleetbench on it: the whole CLI, ``fleetbench
run`` of a plan with one ``openai`` model (preset ``llamacpp-server``) on a ``textgen``
prompts file; its figures are what it stored (per-sample TTFT, inter-token latency,
latency) and what it exported (``throughput_tokens_per_second``,
``requests_per_second`` from the master CSV). The independent side times requests
itself, with httpx: TTFT = first content chunk - request start, inter-token = (last
content chunk - first) ÷ (content chunks - 1), latency = end of stream - start;
throughput = completion tokens ÷ (first request start -> last reply end), the tokens
counted by a vocab-only ``llama_cpp.Llama`` on the reply texts. Two modes:

* ``proxy`` (default): the same requests. Fleetbench's base_url points at a loopback
  pass-through proxy (``timing_proxy``) whose upstream side is a bare
  ``httpx.AsyncClient.stream``; it relays each request byte for byte, flushes each
  chunk downstream as it arrives, and times each chat request from its arrival. A
  server stall or drift hits both sides, so the paired differences are fleetbench's own
  measurement error (plus the proxy hop: its relay time per chunk is printed).
  Requests are paired by their messages (distinct prompts), the last of any retries.
* ``sequential``: the same prompts again from a bare asyncio client with N lanes, the
  sides one after the other; repeats alternate which goes first so drift hits both
  alike. On a shared host the server's own drift between the sides dominates.

Token counts: the server's stream has no ``usage``; fleetbench counts with the
embedded model's GGUF, which it knows from the model id; ``--local-tokenizer`` names it
as ``tokenizer_path``; ``--server-tokenize`` gives another model id, so fleetbench knows
no GGUF and asks the server's ``/extras/tokenize`` after each run's last reply (in proxy
mode those calls pass through the proxy untimed). One unmeasured warm-up request goes
first. Printed: p50, p90 and p99 of each figure per side (pooled over the repeats), the
difference of the medians, the median of the per-request differences, and the
throughput ratio. Targets: medians within 5 ms, throughput within 2 %.

Usage: python benchmarks/serving_agreement.py [--mode proxy|sequential] [--prompts N]
       [--max-tokens N] [--concurrency N] [--repeats N] [--pairs]
       [--local-tokenizer | --server-tokenize]
Exits 0 when both sides ran: the result is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import llama_cpp
from common import builtin_prompts
from http_overhead import ALIAS, bare_body, settings, start_server, stop_server
from timing_proxy import Timed, TimingProxy

from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.report.timing import percentile

MEDIAN_TARGET_MS = 5.0
THROUGHPUT_TARGET = 0.02
FIGURES = ("ttft_s", "itl_s", "latency_s")
MODES = {
    "proxy": "fleetbench's own requests, timed by a pass-through proxy in front of the server",
    "sequential": "the same prompts sent again by a bare client, the sides one after the other",
}


@dataclass
class Side:
    """One side's per-request figures (by repeat, by prompt index) and per-repeat rates."""

    samples: dict[tuple[int, int], dict[str, float | None]] = field(default_factory=dict)
    throughput: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    texts: dict[tuple[int, int], str] = field(default_factory=dict)

    def values(self, figure: str) -> list[float]:
        return [v for s in self.samples.values() if (v := s[figure]) is not None]


# -- fleetbench, through its CLI ---------------------------------------------------------


def write_plan(folder: Path, base_url: str, prompts: list[str], args: argparse.Namespace) -> Path:
    prompts_file = folder / "prompts.jsonl"
    lines = [json.dumps({"id": f"p{i}", "prompt": p}) for i, p in enumerate(prompts)]
    prompts_file.write_text("\n".join(lines) + "\n")
    plan = {
        "name": "agreement",
        "models": [
            {
                "name": "served",
                # Another id: fleetbench knows no GGUF, so the server's endpoint counts.
                "id": "bench/served-model" if args.server_tokenize else EMBEDDED_MODEL_ID,
                "backend": "openai",
                "options": {
                    "preset": "llamacpp-server",
                    "base_url": base_url,
                    "model": ALIAS,
                    "concurrency": args.concurrency,
                    # The GGUF named explicitly (the default finds it from the id).
                    **(
                        {"tokenizer_path": str(embedded_model_path())}
                        if args.local_tokenizer
                        else {}
                    ),
                },
            }
        ],
        "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts_file)}}],
        "generation": settings(args.max_tokens).model_dump(),
        "energy": {"idle_baseline_s": 0},
    }
    path = folder / "plan.json"  # JSON is YAML
    path.write_text(json.dumps(plan, indent=1))
    return path


def fleetbench_cmd(plan: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "fleetbench", "run", str(plan), "-o", str(out)]


def run_fleetbench(plan: Path, out: Path, repeat: int, side: Side) -> list[dict[str, Any]]:
    """One ``fleetbench run``; returns the messages it sent (by prompt index)."""
    proc = subprocess.run(fleetbench_cmd(plan, out), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"fleetbench run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return read_fleetbench(out, repeat, side)


def read_fleetbench(out: Path, repeat: int, side: Side) -> list[dict[str, Any]]:
    """What a finished run stored and exported; returns its messages by sample index."""
    with open(out / "master_results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    side.throughput.append(float(row["throughput_tokens_per_second"]))
    side.rps.append(float(row["requests_per_second"]))
    conn = sqlite3.connect(out / "fleetbench.db")
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM samples ORDER BY sample_index").fetchall()
    finally:
        conn.close()
    messages = []
    for s in rows:
        if s["error"] is not None:
            sys.exit(f"fleetbench: sample {s['sample_index']} failed: {s['error']}")
        side.samples[(repeat, s["sample_index"])] = {f: s[f] for f in FIGURES}
        side.texts[(repeat, s["sample_index"])] = s["output_text"]
        messages.append(json.loads(s["input_json"])["messages"])
    return messages


# -- the bare client ----------------------------------------------------------------------


async def bare_async(
    base_url: str, bodies: list[dict[str, Any]], concurrency: int
) -> tuple[list[dict[str, float | None]], list[str], float]:
    pool = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    figures: list[dict[str, float | None]] = [{} for _ in bodies]
    texts = [""] * len(bodies)
    spans: list[tuple[float, float]] = []
    async with httpx.AsyncClient(
        base_url=base_url + "/", timeout=httpx.Timeout(300.0), limits=pool
    ) as client:
        todo = iter(enumerate(bodies))

        async def lane() -> None:
            for i, body in todo:
                parts: list[str] = []
                first = last = None
                chunks = 0
                start = time.perf_counter()
                async with client.stream("POST", "chat/completions", json=body) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                            continue
                        for choice in json.loads(line[5:]).get("choices") or []:
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                now = time.perf_counter()
                                first = now if first is None else first
                                last, chunks = now, chunks + 1
                                parts.append(content)
                end = time.perf_counter()
                spans.append((start, end))
                texts[i] = "".join(parts)
                figures[i] = {
                    "ttft_s": None if first is None else first - start,
                    "itl_s": (last - first) / (chunks - 1)
                    if first is not None and last is not None and chunks >= 2
                    else None,
                    "latency_s": end - start,
                }

        await asyncio.gather(*(lane() for _ in range(concurrency)))
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return figures, texts, wall


def run_bare(
    base_url: str,
    messages: list[Any],
    args: argparse.Namespace,
    repeat: int,
    side: Side,
    vocab: llama_cpp.Llama,
) -> None:
    s = settings(args.max_tokens)
    bodies = []
    for m in messages:
        body = bare_body("", s, stream=True)
        body["messages"] = m
        bodies.append(body)
    figures, texts, wall = asyncio.run(bare_async(base_url, bodies, args.concurrency))
    tokens = count_tokens(vocab, texts)
    side.throughput.append(tokens / wall)
    side.rps.append(len(bodies) / wall)
    for i, (f, t) in enumerate(zip(figures, texts, strict=True)):
        side.samples[(repeat, i)] = f
        side.texts[(repeat, i)] = t


# -- same requests: fleetbench through the timing proxy ------------------------------------


@dataclass
class Relay:
    """What the proxy itself cost and passed through untimed."""

    relay_s: list[float] = field(default_factory=list)
    passed: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    first: dict[tuple[int, int], float | None] = field(default_factory=dict)  # by request


def count_tokens(vocab: llama_cpp.Llama, texts: list[str]) -> int:
    return sum(len(vocab.tokenize(t.encode(), add_bos=False, special=True)) for t in texts)


def pair_records(
    records: list[Timed], messages: list[Any], repeat: int, side: Side, relay: Relay
) -> None:
    """The proxy's record of each fleetbench sample: same messages, in arrival order
    (a retried request would leave an extra record; the last one is the sample's)."""
    by_messages: dict[str, list[Timed]] = {}
    for r in records:
        by_messages.setdefault(json.dumps(r.messages, sort_keys=True), []).append(r)
    for i, m in enumerate(messages):
        found = by_messages.get(json.dumps(m, sort_keys=True))
        if not found:
            sys.exit(f"the proxy saw no request for fleetbench's sample {i} of repeat {repeat}")
        r = found.pop(0) if len(found) > 1 and messages.count(m) > 1 else found.pop()
        side.samples[(repeat, i)] = r.figures()
        relay.first[(repeat, i)] = r.first_relay_s
        side.texts[(repeat, i)] = r.text
    relay.unmatched += sum(len(v) for v in by_messages.values())


async def proxied_async(
    base_url: str,
    prompts: list[str],
    args: argparse.Namespace,
    folder: Path,
    sides: tuple[Side, Side],
    relay: Relay,
    vocab: llama_cpp.Llama,
) -> None:
    fb, prox = sides
    proxy = TimingProxy(base_url.removesuffix("/v1"))
    proxy_url = await proxy.start(connections=args.concurrency + 4)
    try:
        plan = write_plan(folder, proxy_url, prompts, args)
        warm = bare_body(prompts[0], settings(4), stream=True)
        async with httpx.AsyncClient(timeout=300) as client:  # through the proxy: its
            r = await client.post(proxy_url + "/chat/completions", json=warm)  # pool warms
            r.raise_for_status()
        proxy.take()
        proxy.relay_s.clear()
        for k in range(args.repeats):
            out = folder / f"out{k}"
            proc = await asyncio.create_subprocess_exec(
                *fleetbench_cmd(plan, out),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(proc.communicate(), 900)
            if proc.returncode != 0:
                sys.exit(f"fleetbench run failed ({proc.returncode}):\n{err.decode()[-2000:]}")
            messages = read_fleetbench(out, k, fb)
            records = proxy.take()
            pair_records(records, messages, k, prox, relay)
            wall = max(r.end for r in records) - min(r.start for r in records)
            prox.throughput.append(count_tokens(vocab, [r.text for r in records]) / wall)
            prox.rps.append(len(records) / wall)
            print(f"repeat {k + 1}/{args.repeats} done", flush=True)
    finally:
        await proxy.stop()
    relay.relay_s = proxy.relay_s
    relay.passed = proxy.passed


# -- the comparison ------------------------------------------------------------------------


def report(
    fb: Side, bare: Side, args: argparse.Namespace, load: tuple[float, float], relay: Relay
) -> None:
    other = "proxy" if args.mode == "proxy" else "bare"
    print(f"\nmode {args.mode}: {MODES[args.mode]}")
    print(
        f"{len(fb.samples)} requests per side ({args.prompts} prompts x {args.repeats} "
        f"repeats), concurrency {args.concurrency}, max_tokens {args.max_tokens}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} -> {load[1]:.1f} (over 1 per "
        "CPU: other processes share the server's cores and the spread between repeats "
        "can exceed the targets)"
    )
    if args.pairs:
        print("repeat/sample: fleetbench - " + other + " ms (" + ", ".join(FIGURES) + ")")
        for k, fs in sorted(fb.samples.items()):
            bs = bare.samples[k]
            cells = [
                "-" if fs[f] is None or bs[f] is None else f"{1000 * (fs[f] - bs[f]):+.2f}"  # type: ignore[operator]
                for f in FIGURES
            ]
            first = relay.first.get(k)
            relayed = (
                "" if first is None else f"  (proxy relay of the first chunk {1e3 * first:.2f})"
            )
            print(f"  {k[0]}/{k[1]}: " + "  ".join(cells) + relayed)
    same = sum(fb.texts[k] == bare.texts.get(k) for k in fb.texts)
    print(f"identical replies: {same} of {len(fb.texts)}")
    head = (
        "figure",
        "fleetbench p50/p90/p99 ms",
        f"{other} p50/p90/p99 ms",
        "Δp50 ms",
        "paired Δ ms",
    )
    print(f"{head[0]:<10} {head[1]:>26} {head[2]:>26} {head[3]:>8} {head[4]:>12}")
    for figure in FIGURES:
        a, b = fb.values(figure), bare.values(figure)
        qa = "/".join(f"{1000 * (percentile(a, q) or 0):.1f}" for q in (50, 90, 99))
        qb = "/".join(f"{1000 * (percentile(b, q) or 0):.1f}" for q in (50, 90, 99))
        diff = 1000 * (statistics.median(a) - statistics.median(b))
        paired = [
            fs[figure] - bs[figure]
            for k, fs in fb.samples.items()
            if (bs := bare.samples.get(k)) and fs[figure] is not None and bs[figure] is not None
        ]
        pd = 1000 * statistics.median(paired)
        verdict = "ok" if abs(diff) <= MEDIAN_TARGET_MS else "MISS"
        print(f"{figure:<10} {qa:>26} {qb:>26} {diff:>+8.2f} {pd:>+12.2f}  {verdict}")
    for name, a, b in (
        ("tokens/s", fb.throughput, bare.throughput),
        ("requests/s", fb.rps, bare.rps),
    ):
        ma, mb = statistics.median(a), statistics.median(b)
        rel = ma / mb - 1
        verdict = "ok" if abs(rel) <= THROUGHPUT_TARGET else "MISS"
        per = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(a, b, strict=True))
        print(f"{name:<10} fleetbench {ma:.3f}  {other} {mb:.3f}  {rel:+.2%}  {verdict}  ({per})")
    counter = (
        "the server's /extras/tokenize, after each run's last reply"
        if args.server_tokenize
        else "the GGUF, client side"
    )
    print(
        f"targets: medians within {MEDIAN_TARGET_MS:g} ms, throughput within "
        f"{THROUGHPUT_TARGET:.0%} (tokens/s: fleetbench counts with {counter}, {other} with a "
        "local vocab-only Llama)"
    )
    if args.mode == "proxy":
        r = [1e6 * x for x in relay.relay_s]
        passed = ", ".join(f"{path} x{n}" for path, n in sorted(relay.passed.items()))
        print(
            f"proxy relay per chunk (arrival -> written and drained downstream): p50 "
            f"{percentile(r, 50) or 0:.0f} µs, p99 {percentile(r, 99) or 0:.0f} µs over "
            f"{len(r)} chunks; passed untimed: {passed or 'none'}"
            + (f"; {relay.unmatched} extra timed requests (retries)" if relay.unmatched else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="proxy",
        help="; ".join(f"{k}: {v}" for k, v in MODES.items()),
    )
    parser.add_argument("--pairs", action="store_true", help="print each request's differences")
    parser.add_argument(
        "--local-tokenizer",
        action="store_true",
        help="name the GGUF as tokenizer_path (the default finds it from the model id)",
    )
    parser.add_argument(
        "--server-tokenize",
        action="store_true",
        help="a model id fleetbench knows no GGUF for: it counts with /extras/tokenize",
    )
    args = parser.parse_args()
    if args.local_tokenizer and args.server_tokenize:
        parser.error("--local-tokenizer and --server-tokenize exclude each other")
    prompts = builtin_prompts(args.prompts)
    vocab = llama_cpp.Llama(str(embedded_model_path()), vocab_only=True, verbose=False)
    fb, other, relay = Side(), Side(), Relay()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fleetbench-agreement-") as tmp:
        folder = Path(tmp)
        proc, base_url = start_server(folder / "server.log")
        try:
            if args.mode == "proxy":
                asyncio.run(
                    proxied_async(base_url, prompts, args, folder, (fb, other), relay, vocab)
                )
            else:
                sequential(base_url, prompts, args, folder, (fb, other), vocab)
        finally:
            stop_server(proc)
    report(fb, other, args, (load_before, os.getloadavg()[0]), relay)
    return 0


def sequential(
    base_url: str,
    prompts: list[str],
    args: argparse.Namespace,
    folder: Path,
    sides: tuple[Side, Side],
    vocab: llama_cpp.Llama,
) -> None:
    fb, bare = sides
    plan = write_plan(folder, base_url, prompts, args)
    warm = bare_body(prompts[0], settings(4), stream=True)
    httpx.post(base_url + "/chat/completions", json={**warm, "stream": False}, timeout=300)
    messages: list[Any] = []
    for k in range(args.repeats):
        fleet_first = k % 2 == 0
        if fleet_first:
            messages = run_fleetbench(plan, folder / f"out{k}", k, fb)
        # The bare side sends what fleetbench sent (messages read back from its store).
        if not messages:
            messages = [[{"role": "user", "content": p}] for p in prompts]
        run_bare(base_url, messages, args, k, bare, vocab)
        if not fleet_first:
            sent = run_fleetbench(plan, folder / f"out{k}", k, fb)
            if sent != messages:
                sys.exit("fleetbench sent other messages than the bare client")
        print(f"repeat {k + 1}/{args.repeats} done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
