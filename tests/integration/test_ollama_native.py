"""``api: native``: the ``openai`` backend on Ollama's own /api/chat, against the
loopback Ollama test server relaying to a real llama_cpp.server on SmolLM2. The
server's final ``done`` object's counts and durations become the result's token counts
and ``server_timing``; the text is the upstream's greedy reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from backendctx import make_context
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)
from ollamaserver import LOADED_NS, OllamaServer

from fleetbench.backends import GenerationRequest, GenerationSettings, Message
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions
from fleetbench.errors import BackendError

GREEDY = GenerationSettings(max_tokens=12, temperature=0.0, top_p=1.0, repeat_penalty=1.0)
PROMPTS = ["Name a colour.", "What is 2 + 2?", "Say goodbye."]


def requests(settings: GenerationSettings = GREEDY) -> list[GenerationRequest]:
    return [
        GenerationRequest(index=i, messages=[Message(role="user", content=p)], settings=settings)
        for i, p in enumerate(PROMPTS)
    ]


def backend(server: OllamaServer, run_dir: Path, **options: Any) -> OpenAIBackend:
    opts = OpenAIOptions(preset="ollama", base_url=f"{server.url}/v1", api="native",
                         model="smollm2:135m", **options)  # fmt: skip
    return OpenAIBackend(opts, make_context(run_dir))


@pytest.mark.parametrize("stream", [True, False])
def test_native_chat_records_the_servers_timing(
    tmp_path: Path,
    llama_server: LlamaServer,  # noqa: F811
    stream: bool,
) -> None:
    with OllamaServer(upstream=llama_server.base_url, upstream_model=ALIAS) as server:
        b = backend(server, tmp_path, stream=stream, concurrency=1)
        b.load()
        try:
            results = sorted(b.generate(requests()), key=lambda r: r.index)
        finally:
            b.close()
    assert "GET /api/tags" in server.seen and "POST /api/chat" in server.seen
    assert not any(s.startswith(("POST /v1", "GET /v1")) for s in server.seen)
    assert len(server.finals) == len(PROMPTS)
    finals = sorted(server.finals, key=lambda f: f["total_duration"])  # one per request
    assert [f["load_duration"] for f in server.finals] == [server.load_ns] + [LOADED_NS] * 2
    for r in results:
        assert r.ok and r.text.strip(), r
        assert r.token_source == "usage" and r.completion_tokens and r.prompt_tokens
        timing = r.server_timing
        assert timing is not None
        (final,) = [f for f in finals if f["total_duration"] == round(timing["total_s"] * 1e9)]
        assert timing == {
            "load_s": pytest.approx(final["load_duration"] / 1e9),
            "prompt_eval_tokens": final["prompt_eval_count"],
            "prompt_eval_s": pytest.approx(final["prompt_eval_duration"] / 1e9),
            "eval_tokens": final["eval_count"],
            "eval_s": pytest.approx(final["eval_duration"] / 1e9),
            "total_s": pytest.approx(final["total_duration"] / 1e9),
        }
        assert (r.completion_tokens, r.prompt_tokens) == (
            final["eval_count"], final["prompt_eval_count"])  # fmt: skip
        assert r.finish_reason == final["done_reason"] in ("stop", "length")
        assert (r.ttft_s is not None) == stream and r.latency_s and r.latency_s > 0


def test_native_needs_the_ollama_preset_and_names_a_missing_model(
    tmp_path: Path,
    llama_server: LlamaServer,  # noqa: F811
) -> None:
    with pytest.raises(ValueError, match=r"api: native .* needs preset: ollama"):
        OpenAIOptions(preset="vllm", api="native")
    with OllamaServer(upstream=llama_server.base_url, upstream_model=ALIAS) as server:
        opts = OpenAIOptions(preset="ollama", base_url=f"{server.url}/v1", api="native",
                             model="absent:1b", max_retries=0)  # fmt: skip
        b = OpenAIBackend(opts, make_context(tmp_path))
        b.load()  # warns that the model is not listed; the request names it
        try:
            (result,) = list(b.generate(requests()[:1]))
        finally:
            b.close()
    assert not result.ok and "HTTP 404" in str(result.error) and "absent:1b" in str(result.error)
    with pytest.raises(BackendError, match=r"no server answers at http://127\.0\.0\.1:9/api/tags"):
        OpenAIBackend(
            OpenAIOptions(preset="ollama", base_url="http://127.0.0.1:9/v1", api="native"),
            make_context(tmp_path),
        ).load()
