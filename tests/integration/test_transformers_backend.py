"""The transformers backend on the embedded SmolLM2 GGUF (dequantised by transformers).

Loading takes ~16 s here, so the model is loaded once per module; generations are short.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest
from backendctx import make_context

from fleetbench.backends import (
    GenerationRequest,
    GenerationResult,
    GenerationSettings,
    LoadInfo,
    Message,
    get_backend_class,
)
from fleetbench.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from fleetbench.backends.transformers_local import (
    HF_EXTRA,
    TransformersBackend,
    TransformersOptions,
)
from fleetbench.catalog import embedded_model_path
from fleetbench.errors import BackendError

pytest.importorskip("transformers", reason=HF_EXTRA)
torch = pytest.importorskip("torch", reason=HF_EXTRA)


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TransformersBackend, LoadInfo]]:
    b = TransformersBackend(TransformersOptions(), make_context(tmp_path_factory.mktemp("run")))
    info = b.load()
    yield b, info
    b.close()


@pytest.fixture(scope="module")
def backend(loaded: tuple[TransformersBackend, LoadInfo]) -> TransformersBackend:
    return loaded[0]


def req(index: int, prompt: str, **settings: object) -> GenerationRequest:
    return GenerationRequest(
        index=index,
        messages=[Message(role="user", content=prompt)],
        settings=GenerationSettings(**settings),  # type: ignore[arg-type]
    )


def one(backend: object, index: int, prompt: str, **settings: object) -> GenerationResult:
    results = list(backend.generate([req(index, prompt, **settings)]))  # type: ignore[attr-defined]
    assert len(results) == 1
    return results[0]


# --- no model needed ---------------------------------------------------------------


def test_registry_resolves_transformers() -> None:
    assert get_backend_class("transformers") is TransformersBackend


def test_unavailable_reasons(tmp_path: Path) -> None:
    model = make_context(tmp_path / "run").model
    assert TransformersBackend.unavailable_reason(TransformersOptions(), model) is None
    if not torch.cuda.is_available():
        reason = TransformersBackend.unavailable_reason(TransformersOptions(device="cuda"), model)
        assert reason and "needs a CUDA GPU" in reason
    # never stand in for another model that has no local weights
    other = make_context(tmp_path / "run2", model_id="Qwen/Qwen3-0.6B").model
    reason = TransformersBackend.unavailable_reason(TransformersOptions(), other)
    assert reason and "set options.model_path" in reason
    # an HF folder without weights (a checkpoint not copied here) is skipped, not crashed into
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    reason = TransformersBackend.unavailable_reason(
        TransformersOptions(model_path=tmp_path / "ckpt"), other
    )
    assert reason and "no model weights" in reason


def test_paths_are_local_only(tmp_path: Path) -> None:
    b = TransformersBackend(
        TransformersOptions(model_path=Path("HuggingFaceTB/SmolLM2-135M-Instruct")),
        make_context(tmp_path / "run"),
    )
    with pytest.raises(BackendError, match="nothing is downloaded from a hub"):
        b.load()
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).symlink_to(embedded_model_path())
    several = TransformersBackend(
        TransformersOptions(model_path=tmp_path), make_context(tmp_path / "run")
    )
    with pytest.raises(BackendError, match=r"set options\.gguf_file"):
        several.load()
    with pytest.raises(ValueError, match="device"):
        TransformersOptions(device="gpu")  # type: ignore[arg-type]


# --- the real model ----------------------------------------------------------------


@pytest.mark.slow
def test_load_info(loaded: tuple[TransformersBackend, LoadInfo]) -> None:
    _, info = loaded
    assert info.model_path == str(embedded_model_path())
    assert info.model_size_bytes == embedded_model_path().stat().st_size
    assert 0 < info.load_time_s < 300
    d = info.details
    on = "cuda" if torch.cuda.is_available() else "cpu"  # device: auto
    assert d["dtype"] == "float32" and d["device"] == on  # a GGUF is dequantised
    assert 100e6 < d["parameters"] < 200e6  # 135M
    assert d["torch"] == torch.__version__ and d["transformers"]
    if on == "cpu":
        assert d["peak_rss_mb"] > 300  # the float32 weights live in RAM


@pytest.mark.slow
def test_generates_with_exact_counts_and_timings(backend: TransformersBackend) -> None:
    results = list(
        backend.generate(
            [
                req(0, "Name a colour.", max_tokens=8),
                req(1, "Reply with only the word yes.", max_tokens=6, min_tokens=6),
            ]
        )
    )
    assert [r.index for r in results] == [0, 1]
    for r, limit in zip(results, (8, 6), strict=True):
        assert r.ok and r.text and r.token_source == "exact"
        assert 0 < r.completion_tokens <= limit  # type: ignore[operator]
        assert r.prompt_tokens and r.prompt_tokens > 5
        assert 0 < r.ttft_s <= r.latency_s  # type: ignore[operator]
        assert r.itl_s is not None and r.itl_s > 0
    assert results[1].completion_tokens == 6 and results[1].finish_reason == "length"
    # the count is exact: the text re-tokenises to as many tokens
    assert backend.count_tokens(results[1].text) == 6


@pytest.mark.slow
def test_count_tokens_uses_the_model_tokenizer(backend: TransformersBackend) -> None:
    assert backend.count_tokens("") == 0
    assert backend.count_tokens("<|im_end|>") == 1  # special tokens parse as one token
    assert backend.count_tokens("The user wants a number between 1 and 10.") > 5


@pytest.mark.slow
def test_greedy_is_deterministic(backend: TransformersBackend) -> None:
    a = one(backend, 0, "Write a haiku about rain.", max_tokens=8)
    b = one(backend, 0, "Write a haiku about rain.", max_tokens=8)
    assert a.text == b.text and a.completion_tokens == b.completion_tokens


@pytest.mark.slow
def test_stop_strings_cut_the_text(backend: TransformersBackend) -> None:
    prompt = "Name an animal."  # greedy: "The animal I'm referring to is the ..."
    full = one(backend, 0, prompt, max_tokens=8)
    words = full.text.split()
    assert len(words) > 2
    stop = words[1]
    cut = one(backend, 0, prompt, max_tokens=8, stop=[stop])
    assert stop not in cut.text and full.text.startswith(cut.text)
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens < full.completion_tokens  # type: ignore[operator]


@pytest.mark.slow
def test_template_kwargs_reach_the_chat_template(backend: TransformersBackend) -> None:
    user = [Message(role="user", content="q")]
    tok = backend._tok
    own = tok.chat_template
    try:
        tok.chat_template = "{% if enable_thinking %}<think>{% endif %}{{ messages[0].content }}"
        assert backend.render(user, enable_thinking=True) == "<think>q"
        assert backend.render(user) == "q"
        tok.chat_template = None  # no template of its own: ChatML
        assert backend.render(user) == "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    finally:
        tok.chat_template = own
    # a catalogue kwarg the template does not know does no harm
    kwarg = backend.generate(
        [req(0, "Hi", max_tokens=2).model_copy(update={"chat_template_kwargs": {"x": 1}})]
    )
    assert next(kwarg).ok


@pytest.mark.slow
def test_a_failed_request_does_not_stop_the_others(backend: TransformersBackend) -> None:
    bad = req(3, "Hi", max_tokens=2).model_copy(
        update={"chat_template_kwargs": {"add_generation_prompt": False}}  # clashes: TypeError
    )
    results = list(backend.generate([bad, req(4, "Hi", max_tokens=2)]))
    assert [r.index for r in results] == [3, 4]
    assert not results[0].ok and "TypeError" in (results[0].error or "")
    assert results[1].ok and results[1].completion_tokens == 2


@pytest.mark.slow
def test_greedy_output_is_close_to_llamacpp(
    backend: TransformersBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same Q4_1 weights: dequantised in PyTorch vs quantised kernels in llama.cpp.

    Measured here: identical prompts (token for token) and identical 8-token greedy
    continuations on these prompts; longer ones drift apart after 5-20 tokens.
    """
    llama = LlamaCppBackend(LlamaCppOptions(n_ctx=512), make_context(tmp_path / "run"))
    llama.load()
    try:
        prompts = ["Say hello.", "What is 2 + 2?", "Name an animal."]
        pairs = [
            (one(backend, 0, p, max_tokens=8), one(llama, 0, p, max_tokens=8)) for p in prompts
        ]
    finally:
        llama.close()
    same = 0
    for hf, ll in pairs:
        assert hf.prompt_tokens == ll.prompt_tokens  # one chat template, one tokenizer
        ratio = difflib.SequenceMatcher(None, hf.text, ll.text).ratio()
        same += hf.text == ll.text
        with capsys.disabled():
            print(f"\n  similarity {ratio:.2f}: hf={hf.text!r} llama.cpp={ll.text!r}")
        assert ratio > 0.5
    assert same >= 2


@pytest.mark.slow
def test_an_hf_folder_in_bfloat16_with_a_separate_tokenizer(
    backend: TransformersBackend, tmp_path: Path
) -> None:
    """The usual case elsewhere: a safetensors folder. Made here from the GGUF's weights
    (saved without the GGUF quantization config, else transformers re-permutes them)."""
    transformers = pytest.importorskip("transformers")
    config = copy.deepcopy(backend._model.config)
    del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(backend._model.state_dict())
    folder = tmp_path / "smollm2-hf"
    plain.to(torch.bfloat16).save_pretrained(folder)  # weights and config only: no tokenizer
    del plain

    options = TransformersOptions(model_path=folder, tokenizer_path=embedded_model_path())
    hf = TransformersBackend(options, make_context(tmp_path / "run"))
    info = hf.load()
    try:
        assert info.model_path == str(folder) and info.details["gguf_file"] is None
        assert info.details["dtype"] == "bfloat16"  # "auto": the folder's config
        assert info.model_size_bytes and info.model_size_bytes > 200e6
        result = one(hf, 0, "What is 2 + 2?", max_tokens=4)
        reference = one(backend, 0, "What is 2 + 2?", max_tokens=4)
        assert result.ok and result.completion_tokens == 4
        assert result.prompt_tokens == reference.prompt_tokens
        print(f"bfloat16 folder: {result.text!r}; float32 GGUF: {reference.text!r}")
    finally:
        hf.close()
