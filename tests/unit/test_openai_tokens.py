"""Which GGUF a managed server's command serves (its tokenizer then counts client side)."""

from __future__ import annotations

from pathlib import Path

from fleetbench.backends.openai_tokens import gguf_in_command


def test_the_model_flag_names_the_gguf(tmp_path: Path) -> None:
    gguf = tmp_path / "Model-Q4_K_M.GGUF"
    gguf.write_bytes(b"GGUF")
    for argv in (
        ["python", "-m", "llama_cpp.server", "--model", str(gguf), "--port", "1"],
        ["llama-server", "-m", str(gguf)],
        ["llama-server", f"--model={gguf}"],
    ):
        assert gguf_in_command(argv) == gguf


def test_no_gguf_file_is_none(tmp_path: Path) -> None:
    other = tmp_path / "weights.bin"
    other.write_bytes(b"")
    for argv in (
        ["vllm", "serve", "--model", "Qwen/Qwen3-0.6B"],  # a repository name, not a file
        ["llama-server", "--model", str(tmp_path / "missing.gguf")],
        ["llama-server", "--model", str(other)],
        ["llama-server", "--model"],  # flag without a value
        ["llama-server", "--alias", str(tmp_path / "x.gguf")],
    ):
        assert gguf_in_command(argv) is None
