"""How much request throughput does fleetbench's openai backend cost over bare httpx?

Starts one real ``python -m llama_cpp.server`` (the embedded SmolLM2 GGUF, 127.0.0.1,
``--interrupt_requests false``) and sends it the same prompts with the same request
body, at the same concurrency, through

* bare: an asyncio loop over one ``httpx.AsyncClient`` whose N workers pull prompts
  from a shared list; streamed replies are read line by line and their content deltas
  JSON-decoded (the least any client must do), non-streamed replies decoded;
* fleetbench: ``OpenAIBackend.generate()`` in this process (preset llamacpp-server).
  On top of the bare work it times every chunk (TTFT, ITL), runs retries bookkeeping,
  and, because this server's streams carry no ``usage``, counts prompt and completion
  tokens through the server's ``/extras/tokenize`` (two short requests per prompt,
  served under the same model lock as generation). Non-streamed replies carry usage.

llama_cpp.server generates one request at a time, so requests/s is that of a single
slot; small ``max_tokens`` keeps the client's share visible. Client creation and
``load()`` are outside the timed region on both sides; a repeat is the wall time
from the first request sent to the last reply received. Repeats alternate the two
sides (the order flips every repeat, so drift hits both alike) and the ratio is
median fleetbench requests/s over median bare requests/s. Texts are compared.

Usage: python benchmarks/http_overhead.py [--prompts N] [--max-tokens N]
       [--concurrency N] [--repeats N] [--mode stream|plain|both]
Exits 0 when both sides ran: the result is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
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
import psutil
from common import builtin_prompts

from fleetbench.backends import BackendContext, GenerationRequest, GenerationSettings, Message
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions
from fleetbench.catalog.embedded import EMBEDDED_MODEL_ID, embedded_model_path
from fleetbench.catalog.spec import ModelSpec
from fleetbench.meters.host import cpu_model

TARGET_RATIO = 0.95
NOISY_CORES = 0.10  # CPU used by unrelated processes before a repeat counts as contended
ALIAS = "smollm2"
SEED = 42


@dataclass
class Measurement:
    wall_s: float = 0.0
    requests: int = 0
    texts: list[str] = field(default_factory=list)
    others_cores: float = 0.0
    client_cpu_s: float = 0.0  # this process (all threads) during the timed region
    server_cpu_s: float = 0.0
    ttft_s: float | None = None
    itl_s: float | None = None

    @property
    def req_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0


# -- the server -----------------------------------------------------------------------


def start_server(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path())]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--interrupt_requests", "false"]
    cmd += ["--model_alias", ALIAS, "--n_ctx", "2048"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base_url + "/models", timeout=2).status_code == 200:
                return proc, base_url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(proc)
    sys.exit(f"llama_cpp.server did not start; see {log_path}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- the two sides --------------------------------------------------------------------


def settings(max_tokens: int) -> GenerationSettings:
    return GenerationSettings(
        temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0,
        max_tokens=max_tokens, min_tokens=0, seed=SEED,
    )  # fmt: skip


def bare_body(prompt: str, s: GenerationSettings, stream: bool) -> dict[str, Any]:
    """Written out by hand; checked against what fleetbench sends (see ``same_body``)."""
    return {
        "model": ALIAS,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "stream": stream,
        "top_k": s.top_k,
        "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty,
        "min_tokens": s.min_tokens,
    }


async def bare_async(
    base_url: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    stream: bool,
    server: psutil.Process,
) -> Measurement:
    pool = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(
        base_url=base_url + "/", timeout=httpx.Timeout(300.0), limits=pool
    ) as client:
        texts = [""] * len(bodies)
        todo = iter(enumerate(bodies))

        async def lane() -> None:
            for i, body in todo:
                if not stream:
                    response = await client.post("chat/completions", json=body)
                    response.raise_for_status()
                    texts[i] = response.json()["choices"][0]["message"]["content"] or ""
                    continue
                parts: list[str] = []
                async with client.stream("POST", "chat/completions", json=body) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                            continue
                        chunk = json.loads(line[5:])
                        for choice in chunk.get("choices") or []:
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                parts.append(content)
                texts[i] = "".join(parts)

        mark = cpu_mark(server)
        start = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        m = Measurement(wall_s=wall, requests=len(bodies), texts=texts)
        account(m, mark, server)
    return m


def run_bare(
    base_url: str,
    prompts: list[str],
    s: GenerationSettings,
    concurrency: int,
    stream: bool,
    server: psutil.Process,
) -> Measurement:
    bodies = [bare_body(p, s, stream) for p in prompts]
    return asyncio.run(bare_async(base_url, bodies, concurrency, stream, server))


def make_backend(base_url: str, concurrency: int, stream: bool, run_dir: Path) -> OpenAIBackend:
    options = OpenAIOptions(
        preset="llamacpp-server",
        base_url=base_url,
        model=ALIAS,
        stream=stream,
        concurrency=concurrency,
    )
    model = ModelSpec(id=EMBEDDED_MODEL_ID, name="SmolLM2-served")
    return OpenAIBackend(options, BackendContext(model=model, run_dir=run_dir))


def requests_for(prompts: list[str], s: GenerationSettings) -> list[GenerationRequest]:
    return [
        GenerationRequest(index=i, messages=[Message(role="user", content=p)], settings=s)
        for i, p in enumerate(prompts)
    ]


def run_fleetbench(
    base_url: str,
    prompts: list[str],
    s: GenerationSettings,
    concurrency: int,
    stream: bool,
    run_dir: Path,
    server: psutil.Process,
) -> Measurement:
    backend = make_backend(base_url, concurrency, stream, run_dir)
    backend.load()
    reqs = requests_for(prompts, s)
    try:
        mark = cpu_mark(server)
        start = time.perf_counter()
        results = list(backend.generate(reqs))
        wall = time.perf_counter() - start
        timed = Measurement()
        account(timed, mark, server)
    finally:
        backend.close()
    failed = [r for r in results if not r.ok]
    if failed:
        sys.exit(f"fleetbench: {len(failed)} request(s) failed, e.g. {failed[0].error}")
    by_index = {r.index: r for r in results}
    ttfts = [r.ttft_s for r in results if r.ttft_s is not None]
    itls = [r.itl_s for r in results if r.itl_s is not None]
    return Measurement(
        wall_s=wall,
        requests=len(results),
        texts=[by_index[i].text for i in range(len(prompts))],
        others_cores=timed.others_cores,
        client_cpu_s=timed.client_cpu_s,
        server_cpu_s=timed.server_cpu_s,
        ttft_s=statistics.mean(ttfts) if ttfts else None,
        itl_s=statistics.mean(itls) if itls else None,
    )


def same_body(prompt: str, s: GenerationSettings, stream: bool) -> bool:
    from fleetbench.backends.openai_wire import build_body

    backend = make_backend("http://127.0.0.1:9/v1", 1, stream, Path(tempfile.gettempdir()))
    sent = build_body(requests_for([prompt], s)[0], backend._body_spec())
    return sent == bare_body(prompt, s, stream)


# -- contention -----------------------------------------------------------------------

CpuMark = tuple[float, float, float, float]


def cpu_mark(server: psutil.Process) -> CpuMark:
    """System busy CPU seconds, ours, the server's, and the time."""
    t = psutil.cpu_times()
    busy = sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    st = server.cpu_times()
    return busy, sum(os.times()[:2]), st.user + st.system, time.perf_counter()


def account(m: Measurement, start: CpuMark, server: psutil.Process) -> None:
    """CPU used by this process, by the server, and by everything else (contention)."""
    busy, mine, theirs, now = cpu_mark(server)
    m.client_cpu_s = mine - start[1]
    m.server_cpu_s = theirs - start[2]
    others = (busy - start[0]) - m.client_cpu_s - m.server_cpu_s
    m.others_cores = max(0.0, others / (now - start[3]))


# -- main -----------------------------------------------------------------------------


def compare(
    mode: str, base_url: str, server: psutil.Process, args: argparse.Namespace, work: Path
) -> float:
    stream = mode == "stream"
    prompts = builtin_prompts(args.prompts, cycle=True)
    s = settings(args.max_tokens)
    if not same_body(prompts[0], s, stream):
        sys.exit("the bare loop's request body differs from fleetbench's: not like for like")
    sides = {
        "bare": lambda: run_bare(base_url, prompts, s, args.concurrency, stream, server),
        "fleetbench": lambda: run_fleetbench(
            base_url, prompts, s, args.concurrency, stream, work, server
        ),
    }
    runs: dict[str, list[Measurement]] = {"bare": [], "fleetbench": []}
    for side in sides:  # untimed warm-up of both paths
        sides[side]()
    for rep in range(args.repeats):
        order = ["bare", "fleetbench"] if rep % 2 == 0 else ["fleetbench", "bare"]
        for side in order:
            runs[side].append(sides[side]())  # CPU is accounted over the timed region
        print(
            f"  {mode} repeat {rep + 1}: bare {runs['bare'][-1].req_s:.2f} req/s, "
            f"fleetbench {runs['fleetbench'][-1].req_s:.2f} req/s",
            flush=True,
        )

    print(
        f"\n[{mode}] {'side':<11} {'repeat':>6} {'wall s':>8} {'req/s':>8} "
        f"{'client':>7} {'server':>7} {'others':>7}"
    )
    for side, ms in runs.items():
        for i, m in enumerate(ms, start=1):
            noisy = " *" if m.others_cores > NOISY_CORES else ""
            print(
                f"[{mode}] {side:<11} {i:>6} {m.wall_s:>8.3f} {m.req_s:>8.2f} "
                f"{m.client_cpu_s * 1000 / m.requests:>7.1f} "
                f"{m.server_cpu_s * 1000 / m.requests:>7.1f} {m.others_cores:>7.2f}{noisy}"
            )
    for side, ms in runs.items():
        print(
            f"[{mode}] {side:<11} {'median':>6} {statistics.median(m.wall_s for m in ms):>8.3f} "
            f"{statistics.median(m.req_s for m in ms):>8.2f} "
            f"{statistics.median(m.client_cpu_s * 1000 / m.requests for m in ms):>7.1f} "
            f"{statistics.median(m.server_cpu_s * 1000 / m.requests for m in ms):>7.1f}"
        )
    print(
        f"[{mode}] client/server = CPU ms per request of this process / of the server "
        "(robust to contention); others = cores used by other processes"
    )
    fb = runs["fleetbench"][0]
    if fb.ttft_s is not None:
        print(
            f"[{mode}] fleetbench mean TTFT {fb.ttft_s * 1000:.0f} ms (queueing included)", end=""
        )
        print(f", mean ITL {fb.itl_s * 1000:.1f} ms" if fb.itl_s is not None else "")
    same = sum(
        a == b for a, b in zip(runs["bare"][0].texts, runs["fleetbench"][0].texts, strict=True)
    )
    print(f"[{mode}] same text per prompt: {same}/{len(prompts)}")
    ratio = statistics.median(m.req_s for m in runs["fleetbench"]) / statistics.median(
        m.req_s for m in runs["bare"]
    )
    verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"[{mode}] ratio fleetbench/bare (median req/s): {ratio:.3f} ({verdict}, target >= "
          f"{TARGET_RATIO})")  # fmt: skip
    quiet = {side: [m for m in ms if m.others_cores <= NOISY_CORES] for side, ms in runs.items()}
    if any(len(quiet[side]) < len(runs[side]) for side in runs):
        print(f"[{mode}] WARNING: other processes competed for the CPU in some repeats (*)")
        if quiet["bare"] and quiet["fleetbench"]:
            q = statistics.median(m.req_s for m in quiet["fleetbench"]) / statistics.median(
                m.req_s for m in quiet["bare"]
            )
            print(f"[{mode}] ratio over uncontended repeats only: {q:.3f}")
    return ratio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=24, help="built-in prompts, cycled")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=7, help="bare/fleetbench pairs")
    ap.add_argument("--mode", choices=["stream", "plain", "both"], default="both")
    args = ap.parse_args()
    if min(args.repeats, args.max_tokens, args.concurrency) < 1:
        ap.error("--repeats, --max-tokens and --concurrency must be >= 1")

    print(f"machine:    {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()}")
    print(
        f"python:     {platform.python_version()}   llama_cpp: {llama_cpp.__version__}   "
        f"httpx: {httpx.__version__}"
    )
    print(
        f"workload:   {args.prompts} prompts x max_tokens {args.max_tokens}, greedy, "
        f"concurrency {args.concurrency}, {args.repeats} alternating repeats per mode"
    )
    with tempfile.TemporaryDirectory(prefix="fleetbench-http-") as tmp:
        work = Path(tmp)
        proc, base_url = start_server(work / "server.log")
        print(f"server:     python -m llama_cpp.server at {base_url} (pid {proc.pid})\n")
        try:
            server = psutil.Process(proc.pid)
            modes = ["stream", "plain"] if args.mode == "both" else [args.mode]
            ratios = {mode: compare(mode, base_url, server, args, work) for mode in modes}
        finally:
            stop_server(proc)
    print("\nsummary: " + ", ".join(f"{m} ratio {r:.3f}" for m, r in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
