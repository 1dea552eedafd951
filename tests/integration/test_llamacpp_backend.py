"""The embedded model through the llamacpp backend (real SmolLM2, in-process)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from backendctx import make_context

from fleetbench.backends import (
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    Message,
    get_backend_class,
)
from fleetbench.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from fleetbench.catalog import embedded_model_path


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppBackend]:
    b = LlamaCppBackend(LlamaCppOptions(n_ctx=512), make_context(tmp_path_factory.mktemp("run")))
    info = b.load()
    assert info.model_path == str(embedded_model_path())
    assert info.model_size_bytes and info.model_size_bytes > 50_000_000
    assert 0 < info.load_time_s < 30
    yield b
    b.close()


def req(index: int, prompt: str, **settings: object) -> GenerationRequest:
    return GenerationRequest(
        index=index,
        messages=[Message(role="user", content=prompt)],
        settings=GenerationSettings(**settings),  # type: ignore[arg-type]
    )


def one(backend: LlamaCppBackend, index: int, prompt: str, **settings: object) -> GenerationResult:
    results = list(backend.generate([req(index, prompt, **settings)]))
    assert len(results) == 1
    return results[0]


def test_registry_resolves_llamacpp() -> None:
    assert get_backend_class("llamacpp") is LlamaCppBackend


def test_generates_with_exact_counts_and_timings(backend: LlamaCppBackend) -> None:
    results = list(
        backend.generate(
            [req(0, "Name a colour.", max_tokens=8), req(1, "Count to ten.", max_tokens=5)]
        )
    )
    assert [r.index for r in results] == [0, 1]
    for r, limit in zip(results, (8, 5), strict=True):
        assert r.ok and r.text
        assert 0 < r.completion_tokens <= limit  # type: ignore[operator]
        assert r.prompt_tokens and r.prompt_tokens > 5
        assert 0 < r.ttft_s < r.latency_s  # type: ignore[operator]
    assert results[1].completion_tokens == 5 and results[1].finish_reason == "length"
    # the count is exact: the text re-tokenises to as many tokens
    llm = backend._llm
    assert len(llm.tokenize(results[1].text.encode(), add_bos=False)) == 5


def test_count_tokens_uses_the_model_tokenizer(backend: LlamaCppBackend) -> None:
    result = one(backend, 0, "Count to ten.", max_tokens=6)
    assert backend.count_tokens(result.text) == result.completion_tokens
    assert backend.count_tokens("") == 0
    assert backend.count_tokens("<|im_end|>") == 1  # special tokens parse as one token
    assert backend.count_tokens("The user wants a number between 1 and 10.") > 5


def test_greedy_is_deterministic(backend: LlamaCppBackend) -> None:
    a = one(backend, 0, "Write a haiku about rain.", max_tokens=20)
    list(backend.generate([req(0, "Something else entirely.", max_tokens=5)]))
    b = one(backend, 0, "Write a haiku about rain.", max_tokens=20)
    assert a.text == b.text and a.completion_tokens == b.completion_tokens


def test_sampling_params_are_applied(backend: LlamaCppBackend) -> None:
    prompt = "Tell me a story about a dragon."
    outs = {one(backend, 0, prompt, temperature=1.5, seed=s, max_tokens=16).text for s in (1, 2, 3)}
    assert len(outs) > 1  # seeds matter when sampling
    same = [one(backend, 0, prompt, temperature=1.5, seed=9, max_tokens=16) for _ in range(2)]
    assert same[0].text == same[1].text  # and the same seed repeats


def test_stop_strings_cut_the_text(backend: LlamaCppBackend) -> None:
    full = one(backend, 0, "List three fruits, one per line.", max_tokens=30)
    words = full.text.split()
    assert len(words) > 2
    stop = words[1]
    cut = one(backend, 0, "List three fruits, one per line.", max_tokens=30, stop=[stop])
    assert stop not in cut.text and full.text.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_prompt_too_long_is_a_sample_error(backend: LlamaCppBackend) -> None:
    result = one(backend, 3, "word " * 600, max_tokens=8)
    assert result.index == 3 and not result.ok
    assert "exceeds n_ctx" in (result.error or "")


def test_system_prompt_and_template_kwargs_reach_the_template(backend: LlamaCppBackend) -> None:
    template = backend._template
    assert template is not None
    rendered = template.render(
        [Message(role="system", content="Be terse."), Message(role="user", content="Hi")]
    )
    assert "Be terse." in rendered and rendered.endswith("<|im_start|>assistant\n")


def test_template_kwargs_are_passed_through() -> None:
    from fleetbench.backends.chat_template import ChatTemplate

    template = ChatTemplate("{% if enable_thinking %}<think>{% endif %}{{ messages[0].content }}")
    user = [Message(role="user", content="q")]
    assert template.render(user, enable_thinking=True) == "<think>q"
    assert template.render(user) == "q"


def test_threads_default_to_available_cores_and_busy_runs_are_logged(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import subprocess
    import sys

    from fleetbench.meters.host import available_cores

    b = LlamaCppBackend(LlamaCppOptions(n_ctx=256), make_context(tmp_path_factory.mktemp("busy")))
    info = b.load()
    assert info.details["n_threads"] == available_cores()
    burn = "import time\nend = time.time() + 2\nwhile time.time() < end: pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 1)]
    for p in burners:
        p.wait()
    with caplog.at_level("WARNING", logger="fleetbench.backends.llamacpp"):
        b.close()
    assert any("machine busy during the run" in r.getMessage() for r in caplog.records)
