"""The ``openai`` backend against a real llama_cpp.server serving SmolLM2."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from backendctx import make_context
from llamaserver import ALIAS, LlamaServer, llama_server  # noqa: F401  (fixture)
from procs import wait_dead

from fleetbench.backends import GenerationRequest, GenerationResult, GenerationSettings, Message
from fleetbench.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from fleetbench.backends.managed import ManagedServer
from fleetbench.backends.openai_http import OpenAIBackend, OpenAIOptions
from fleetbench.catalog import embedded_model_path
from fleetbench.errors import BackendError

PROMPTS = [
    "Name a colour.",
    "Write a haiku about rain.",
    "What is 2 + 2?",
    "List three fruits, one per line.",
    "Say goodbye.",
    "Name an animal.",
]
# Greedy with every other sampler neutral, sent explicitly (the server's defaults differ).
GREEDY = GenerationSettings(max_tokens=24, temperature=0.0, top_p=1.0, repeat_penalty=1.0)


def requests(settings: GenerationSettings = GREEDY, prompts: list[str] = PROMPTS) -> list[Any]:
    return [
        GenerationRequest(index=i, messages=[Message(role="user", content=p)], settings=settings)
        for i, p in enumerate(prompts)
    ]


def make_backend(server: LlamaServer, run_dir: Path, **options: Any) -> OpenAIBackend:
    opts = OpenAIOptions(preset="llamacpp-server", base_url=server.base_url, model=ALIAS, **options)
    return OpenAIBackend(opts, make_context(run_dir))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, GenerationResult]:
    """The same prompts through the in-process llamacpp backend."""
    backend = LlamaCppBackend(LlamaCppOptions(), make_context(tmp_path_factory.mktemp("ref")))
    backend.load()
    try:
        return {r.index: r for r in backend.generate(requests())}
    finally:
        backend.close()


def run_all(backend: OpenAIBackend, reqs: list[Any]) -> dict[int, GenerationResult]:
    backend.load()
    try:
        results = list(backend.generate(reqs))
    finally:
        backend.close()
    by_index = {r.index: r for r in results}
    assert len(results) == len(reqs) == len(by_index)
    return by_index


@pytest.mark.parametrize("stream", [True, False])
def test_same_content_and_counts_as_in_process(
    llama_server: LlamaServer,  # noqa: F811
    reference: dict[int, GenerationResult],
    tmp_path: Path,
    stream: bool,
) -> None:
    results = run_all(
        make_backend(llama_server, tmp_path, stream=stream, concurrency=4), requests()
    )
    for i, r in results.items():
        ref = reference[i]
        assert r.ok, r.error
        assert r.text == ref.text  # greedy, same GGUF, same template: identical
        assert (r.prompt_tokens, r.completion_tokens) == (ref.prompt_tokens, ref.completion_tokens)
        assert r.finish_reason == ref.finish_reason
        assert r.retries == 0 and r.latency_s and r.latency_s > 0
        if stream:
            # llama_cpp.server streams carry no usage: the embedded model's GGUF counts
            # them client side (the server's /extras/tokenize would queue behind generation)
            assert r.token_source == "tokenizer"
            assert r.ttft_s is not None and 0 < r.ttft_s < r.latency_s
            assert r.itl_s is not None and 0 < r.itl_s < r.latency_s
        else:
            assert r.token_source == "usage" and r.ttft_s is None and r.itl_s is None


def test_concurrency_keeps_n_in_flight_and_yields_as_completed(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The server serialises generation: with 4 in flight, later requests queue there, so
    # their TTFT includes the wait; with 1 in flight none does.
    settings = GREEDY.model_copy(update={"max_tokens": 8})
    reqs = requests(settings)
    serial = run_all(make_backend(llama_server, tmp_path, concurrency=1), reqs)
    parallel = run_all(make_backend(llama_server, tmp_path, concurrency=4), reqs)
    assert [serial[i].text for i in serial] == [parallel[i].text for i in serial]
    max_serial = max(r.ttft_s or 0 for r in serial.values())
    max_parallel = max(r.ttft_s or 0 for r in parallel.values())
    assert max_parallel > max_serial  # queued behind others: requests really overlapped


def test_sampling_params_reach_the_server(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    prompt = ["Write a haiku about rain."]
    plain = run_all(make_backend(llama_server, tmp_path), requests(GREEDY, prompt))[0]
    penalised = GREEDY.model_copy(update={"repeat_penalty": 1.5})
    other = run_all(make_backend(llama_server, tmp_path), requests(penalised, prompt))[0]
    assert plain.text != other.text  # repeat_penalty is sent (not the server's 1.1)
    short = GREEDY.model_copy(update={"max_tokens": 3})
    cut = run_all(make_backend(llama_server, tmp_path, stream=False), requests(short, prompt))
    assert cut[0].completion_tokens == 3 and cut[0].finish_reason == "length"
    seeded = GREEDY.model_copy(update={"temperature": 1.5, "seed": 11, "max_tokens": 12})
    story = ["Tell me a story about a dragon."]
    a = run_all(make_backend(llama_server, tmp_path), requests(seeded, story))[0]
    b = run_all(make_backend(llama_server, tmp_path), requests(seeded, story))[0]
    assert a.text == b.text  # the seed is sent


def test_load_info_and_token_counter(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    backend = make_backend(llama_server, tmp_path)
    info = backend.load()
    try:
        assert info.details == {
            "base_url": llama_server.base_url,
            "model": ALIAS,
            "preset": "llamacpp-server",
            "stream": True,
            "concurrency": 1,
            "tokenizer": str(embedded_model_path()),  # renders prompts for counting
        }
        assert info.model_path is None  # the weights are the server's business
        assert info.startup_s is None and 0 < info.load_time_s < 30
        count = backend.count_tokens
        assert callable(count) and count("") == 0 and count("hello world") == 2
    finally:
        backend.close()
    backend.close()  # idempotent


def test_local_counts_run_off_the_http_loop(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The GGUF counts a reply while the next request is being sent: on the loop they
    would sit between that request's start stamp and its send, inflating its TTFT and
    latency (measured through the serving-agreement proxy: +2..15 ms on a busy host)."""
    backend = make_backend(llama_server, tmp_path)
    backend.load()
    try:
        local = backend._local
        assert local is not None
        threads: list[str] = []
        count = local.count

        def spy(text: str) -> int:
            threads.append(threading.current_thread().name)
            return count(text)

        local.count = spy  # type: ignore[method-assign]
        short = GREEDY.model_copy(update={"max_tokens": 4})
        results = list(backend.generate(requests(short, PROMPTS[:3])))
    finally:
        backend.close()
    assert all(r.ok and r.token_source == "tokenizer" and r.completion_tokens for r in results)
    assert len(threads) == 2 * 3  # the reply and the rendered prompt, per result
    assert "fleetbench-http" not in threads and threading.main_thread().name not in threads


@pytest.mark.parametrize("stream", [True, False])
def test_a_request_starts_when_it_goes_out(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
    stream: bool,
) -> None:
    """Time the client spends before the request's first network step (here a slow
    request hook; in a run, the worker recording the previous result) is not the
    server's: TTFT and latency start when the request goes out."""
    backend = make_backend(llama_server, tmp_path, stream=stream)
    backend.load()
    hook_done: list[float] = []

    async def slow_hook(request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            await asyncio.sleep(0.3)
            hook_done.append(time.time())

    try:
        assert backend._client is not None
        backend._client.event_hooks["request"].append(slow_hook)
        short = GREEDY.model_copy(update={"max_tokens": 4})
        (result,) = list(backend.generate(requests(short, ["Say hi."])))
    finally:
        backend.close()
    assert result.ok and result.sent_at is not None and result.received_at is not None
    (done,) = hook_done
    assert result.sent_at >= done - 0.01  # stamped after the hook (0.3 s), not before it
    assert result.latency_s == pytest.approx(result.received_at - result.sent_at, abs=1e-3)


def test_server_tokenize_without_a_local_tokenizer(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A model that is not the embedded one: no local template, so prompt tokens stay
    unknown while completion tokens come from the server."""
    opts = OpenAIOptions(preset="llamacpp-server", base_url=llama_server.base_url, model=ALIAS)
    backend = OpenAIBackend(opts, make_context(tmp_path, model_id="acme/other-model"))
    backend.load()
    try:
        (result,) = list(backend.generate(requests(GREEDY, ["Say hi."])))
        assert result.ok and result.token_source == "tokenize"
        assert result.completion_tokens and result.prompt_tokens is None
        count = backend.count_tokens
        assert callable(count) and count("hello world") == 2  # via the endpoint
    finally:
        backend.close()


def server_count(server: LlamaServer, text: str) -> int:
    """What the server's own tokenizer gives for ``text`` (less the BOS it adds)."""
    url = server.root_url + "/extras/tokenize"

    def raw(t: str) -> int:
        return len(httpx.post(url, json={"input": t}, timeout=30).json()["tokens"])

    return raw(text) - raw("")


def test_server_counts_wait_until_the_last_reply_is_in(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No GGUF known: the server's /extras/tokenize counts, but only once every reply
    of the batch is in (llama_cpp.server serialises it with generation, so asked
    earlier it would slow what is measured); the counts are the server's tokenizer's."""
    from faultproxy import FaultProxy

    with FaultProxy(llama_server.root_url) as proxy:
        opts = OpenAIOptions(
            preset="llamacpp-server", base_url=proxy.base_url, model=ALIAS, concurrency=2
        )
        backend = OpenAIBackend(opts, make_context(tmp_path, model_id="acme/other-model"))
        caplog.set_level("WARNING", logger="fleetbench")
        short = GREEDY.model_copy(update={"max_tokens": 8})
        results = run_all(backend, requests(short, PROMPTS[:4]))
        seen = list(proxy.seen)
    last_reply = max(r.received_at or 0 for r in results.values())
    first_sent = min(r.sent_at or 0 for r in results.values())
    tokenize = [s for s in seen if s.path == "/extras/tokenize"]
    chats = [s for s in seen if s.path == "/v1/chat/completions"]
    assert len(chats) == 4 and len(tokenize) == 4 + 1  # one per reply, one for the offset
    assert first_sent <= min(s.at for s in chats)
    assert min(s.at for s in tokenize) >= last_reply  # none inside the generation window
    for r in results.values():
        assert r.ok and r.text and r.token_source == "tokenize", r.error
        assert r.completion_tokens == server_count(llama_server, r.text)
        assert r.prompt_tokens is None  # no template known: never guessed
    assert len([m for m in caplog.messages if "after each round's last reply" in m]) == 1


def test_close_while_counts_wait_drops_them_cleanly(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """close() in the middle of a batch whose counts wait for its last reply: the
    waiting work is closed (never left unawaited), generate() ends, close() is prompt."""
    import gc
    import threading
    import warnings

    from faultproxy import FaultProxy

    with FaultProxy(llama_server.root_url) as proxy:
        opts = OpenAIOptions(
            preset="llamacpp-server", base_url=proxy.base_url, model=ALIAS, concurrency=2
        )
        backend = OpenAIBackend(opts, make_context(tmp_path, model_id="acme/other-model"))
        backend.load()
        got: list[GenerationResult] = []
        short = GREEDY.model_copy(update={"max_tokens": 4})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            worker = threading.Thread(target=lambda: got.extend(backend.generate(requests(short))))
            worker.start()
            deadline = time.monotonic() + 60
            while proxy.attempts("") < 4 and time.monotonic() < deadline:
                time.sleep(0.02)  # the first two replies are in and waiting
            assert proxy.attempts("") >= 4
            started = time.monotonic()
            backend.close()
            worker.join(15)
            assert not worker.is_alive() and time.monotonic() - started < 15
            gc.collect()
    assert not got  # nothing was yielded: the batch never reached its end
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_no_server_is_a_clear_load_error(tmp_path: Path) -> None:
    from llamaserver import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(
        OpenAIOptions(base_url=url, connect_timeout_s=2), make_context(tmp_path)
    )
    started = time.monotonic()
    with pytest.raises(BackendError, match=f"no server answers at {url}/models"):
        backend.load()
    assert time.monotonic() - started < 15
    backend.close()


def test_generate_before_load_is_an_error(tmp_path: Path) -> None:
    backend = OpenAIBackend(OpenAIOptions(base_url="http://127.0.0.1:9/v1"), make_context(tmp_path))
    with pytest.raises(BackendError, match="before load"):
        list(backend.generate(requests()))


def test_stopping_early_cancels_the_rest(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    backend = make_backend(llama_server, tmp_path, concurrency=2)
    backend.load()
    try:
        results: Iterator[GenerationResult] = backend.generate(requests())
        first = next(results)
        assert first.ok
        results.close()  # type: ignore[attr-defined]
    finally:
        started = time.monotonic()
        backend.close()
        assert time.monotonic() - started < 15


MANAGED = [
    "{python}", "-m", "llama_cpp.server", "--model", "{embedded_model}",
    "--host", "{host}", "--port", "{port}", "--interrupt_requests", "false",
    "--model_alias", "{model}", "--n_ctx", "2048",
]  # fmt: skip


def managed_options(**extra: Any) -> OpenAIOptions:
    return OpenAIOptions.model_validate(
        {
            "preset": "llamacpp-server",
            "model": "served-smollm2",
            "server": {"command": MANAGED, "startup_timeout_s": 120},
            **extra,
        }
    )


def test_managed_server_is_started_used_and_stopped(tmp_path: Path) -> None:
    """``server:`` starts llama_cpp.server for the run; close() stops its process group.
    The GGUF it serves (``--model``) counts the tokens client side, whatever the model id."""
    opts = managed_options()
    backend = OpenAIBackend(opts, make_context(tmp_path, model_id="acme/served"))
    info = backend.load()
    try:
        server = backend._server
        assert server is not None and server.pid is not None
        pid = server.pid
        assert info.startup_s is not None and 0 < info.startup_s < 120
        assert info.details["base_url"] == server.base_url != opts.base_url
        assert info.details["tokenizer"] == str(embedded_model_path())
        (result,) = list(backend.generate(requests(GREEDY, ["Say hi."])))
        assert result.ok and result.text and result.token_source == "tokenizer"
        assert result.completion_tokens and result.prompt_tokens  # the template is known
    finally:
        backend.close()
    assert wait_dead(pid, timeout=20)
    assert (tmp_path / "server.log").read_text()


def test_managed_server_stops_when_load_fails_after_start(tmp_path: Path) -> None:
    started: list[int] = []
    backend = OpenAIBackend(
        managed_options(tokenizer_path="/nonexistent.gguf"), make_context(tmp_path)
    )
    real_start = ManagedServer.start

    def spy(server: ManagedServer) -> str:
        url = real_start(server)
        started.append(server.pid or 0)
        return url

    with (
        pytest.MonkeyPatch.context() as mp,
        pytest.raises(BackendError, match="tokenizer_path: file not found"),
    ):
        mp.setattr(ManagedServer, "start", spy)
        backend.load()
    assert started and wait_dead(started[0], timeout=20)
    assert backend._server is None


NO_COUNT_HINT = "options.tokenizer_path"


def uncounted(results: dict[int, GenerationResult]) -> None:
    for r in results.values():
        assert r.ok and r.text, r.error  # real replies, only their counts are unknown
        assert (r.prompt_tokens, r.completion_tokens, r.token_source) == (None, None, None)


def test_no_usage_and_no_tokenizer_leaves_counts_unknown_with_one_warning(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """llama_cpp.server streams without usage; no preset (so no tokenize endpoint) and
    a model that is not the embedded one (so no tokenizer): None, never 0."""
    opts = OpenAIOptions(base_url=llama_server.base_url, model=ALIAS, concurrency=2)
    backend = OpenAIBackend(opts, make_context(tmp_path, model_id="acme/other-model"))
    caplog.set_level("WARNING", logger="fleetbench")
    short = GREEDY.model_copy(update={"max_tokens": 4})
    uncounted(run_all(backend, requests(short, PROMPTS[:3])))
    assert backend.count_tokens is None  # reasoning tokens stay unknown too
    hints = [m for m in caplog.messages if NO_COUNT_HINT in m]
    assert len(hints) == 1 and "stay unknown" in hints[0]  # once per run, not per sample


def test_tokenize_endpoint_gone_and_no_tokenizer_leaves_counts_unknown(
    llama_server: LlamaServer,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from faultproxy import FaultProxy, Status

    with FaultProxy(llama_server.root_url, fault_path="/extras/tokenize") as proxy:
        proxy.script({"": [Status(404)] * 20})
        opts = OpenAIOptions(preset="llamacpp-server", base_url=proxy.base_url, model=ALIAS)
        backend = OpenAIBackend(opts, make_context(tmp_path, model_id="acme/other-model"))
        caplog.set_level("WARNING", logger="fleetbench")
        short = GREEDY.model_copy(update={"max_tokens": 4})
        uncounted(run_all(backend, requests(short, PROMPTS[:2])))
    assert [m for m in caplog.messages if "no tokenize endpoint" in m]
    assert len([m for m in caplog.messages if NO_COUNT_HINT in m]) == 1
