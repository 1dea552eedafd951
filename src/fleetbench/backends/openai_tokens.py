"""Token counts for replies that carry no ``usage``.

Streams from llama-cpp-python's server never carry usage, and some servers drop it
when ``stream_options`` is not understood. Then the counts come from the model's own
tokenizer, client side, when fleetbench knows its GGUF (``tokenizer_path``, the GGUF a
managed server is started with, or the embedded model): the same vocabulary the server
uses, and it costs the server nothing. Failing that, from the server's tokenize
endpoint (the served tokenizer, so exact up to re-tokenising the text), but only after
the batch's last reply: llama_cpp.server serialises tokenize calls with generation, so
asking it while replies stream would slow what is being measured (at concurrency 2, to
a third). Prompt tokens need the prompt as the server rendered it, so they are counted
only when the chat template is known (from that GGUF); otherwise they stay unknown.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx

from fleetbench.backends.base import Message
from fleetbench.backends.chat_template import ChatTemplate
from fleetbench.backends.presets import TokenizeKind
from fleetbench.errors import BackendError

# Flags that name the weights file in the argv of llama_cpp.server and llama.cpp's
# llama-server (vLLM's --model is a repository name: not a file, so never taken).
_MODEL_FLAGS = ("--model", "-m")


def gguf_in_command(argv: list[str]) -> Path | None:
    """The GGUF file a server command serves (``--model PATH``, ``-m PATH`` or
    ``--model=PATH`` naming an existing ``.gguf`` file), else None."""
    for i, arg in enumerate(argv):
        value = None
        if arg in _MODEL_FLAGS and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--model="):
            value = arg.split("=", 1)[1]
        if value and value.lower().endswith(".gguf") and Path(value).is_file():
            return Path(value)
    return None


class EndpointMissing(Exception):
    """The server has no such tokenize endpoint (404/405): stop asking it."""


class ServerTokenizer:
    """The tokenize endpoint of llama-cpp-python's server, vLLM or TGI.

    Endpoints may add BOS (llama-cpp-python's does, for models that use one); the
    count of an empty text is measured once and subtracted.
    """

    def __init__(self, kind: TokenizeKind, base_url: str, model: str) -> None:
        root = base_url.rstrip("/")
        root = root[: -len("/v1")] if root.endswith("/v1") else root
        self.kind = kind
        self.url = root + ("/extras/tokenize" if kind == "llamacpp" else "/tokenize")
        self.model = model
        self._offset: int | None = None

    async def count(self, client: httpx.AsyncClient, text: str) -> int:
        if self._offset is None:
            self._offset = await self._raw(client, "")
        return max(0, await self._raw(client, text) - self._offset)

    async def _raw(self, client: httpx.AsyncClient, text: str) -> int:
        body: dict[str, Any]
        if self.kind == "llamacpp":
            body = {"input": text, "model": self.model}
        elif self.kind == "vllm":
            body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        else:
            body = {"inputs": text, "add_special_tokens": False}
        response = await client.post(self.url, json=body)
        if response.status_code in (404, 405):
            raise EndpointMissing(f"{self.url}: HTTP {response.status_code}")
        response.raise_for_status()
        reply = response.json()
        if isinstance(reply, list):  # TGI: one object per token
            return len(reply)
        if isinstance(reply.get("count"), int):
            return int(reply["count"])
        return len(reply["tokens"])


class GgufTokenizer:
    """The tokenizer and chat template of a local GGUF (vocabulary only, no weights)."""

    def __init__(self, path: Path) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendError(
                "options.tokenizer_path needs llama-cpp-python; run: pip install llama-cpp-python"
            ) from None
        if not path.is_file():
            raise BackendError(f"options.tokenizer_path: file not found: {path}")
        self.path = path
        self._llm: Any = Llama(model_path=str(path), vocab_only=True, verbose=False)
        self._lock = threading.Lock()  # used from the HTTP thread and the caller's
        meta: dict[str, str] = self._llm.metadata
        template = meta.get("tokenizer.chat_template")
        self.template = (
            ChatTemplate(
                template,
                bos_token=self._special(self._llm.token_bos()),
                eos_token=self._special(self._llm.token_eos()),
            )
            if template
            else None
        )

    def _special(self, token: int) -> str:
        if token < 0:
            return ""
        return str(self._llm.detokenize([token], special=True).decode("utf-8", errors="ignore"))

    def count(self, text: str) -> int:
        """Tokens as a llama.cpp server tokenizes a rendered prompt: no added BOS (the
        template writes it), special tokens parsed."""
        if not text:
            return 0
        with self._lock:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, messages: list[Message], kwargs: dict[str, Any]) -> str | None:
        if self.template is None:
            return None
        try:
            return self.template.render(messages, **kwargs)
        except Exception:  # a template that rejects these messages: count unknown
            return None

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
