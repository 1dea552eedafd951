"""``wattbot``: WattBot 2025 question answering, closed-book or retrieval-augmented.

Each question's prompt asks for one JSON object (answer_value, answer_unit, ref_id list,
explanation). In ``rag`` mode the ``top_k`` passages retrieved for the question (once,
when the samples are built) are shown labelled by document id and stored with the sample
(``metadata`` and the score's ``retrieved``). The default corpus is a demo built from the
questions file's ``supporting_materials`` column: one document per ref_id.

Scoring reproduces ``fleetbench score wattbot`` (scoring/wattbot.py): each sample's score
holds the exact submission row it produces, scored by the scorer's own functions, and
``aggregate_scores`` combines them as the scorer does, so a run's ``overall`` equals the
score of its ``submission.csv`` against the same questions. Choices:

* Unparsable output is a wrong answer: answer_value ``parse_error`` (never blank, never a
  number), ref_id ``[]``, explanation ``unparsable model output: <first line>``; the raw text
  stays in the stored sample. A failed generation likewise uses ``generation_error``.
* Blank fields are written ``is_blank`` (the dataset's convention; the scorer treats ``""``
  and ``is_blank`` alike), so every explanation is non-empty.
* A sample never reached (no stored result) counts in the run's metrics as a wrong, non-blank
  answer with ref score 0 and does not enter NA recall (its truth is not at hand); it has no
  submission row.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.scoring.wattbot import BLANK, combine, is_blank, score_question
from fleetbench.tasks.answer_json import ParsedAnswer, parse
from fleetbench.tasks.base import Sample, chat_messages
from fleetbench.tasks.retrieval import Index, Retriever, load_corpus

BUILTIN_QUESTIONS = "wattbot_train_QA.csv"
REQUIRED = ("id", "question", "answer_value", "ref_id")
SUBMISSION_COLUMNS = ("id", "answer_value", "answer_unit", "ref_id", "explanation")
PARSE_ERROR, GENERATION_ERROR = "parse_error", "generation_error"
FORMAT = (
    'Reply with only a JSON object: {"answer_value": "<number or short text>", '
    '"answer_unit": "<unit>", "ref_id": ["<document id>"], "explanation": "<one sentence>"}'
)


class WattBotOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions_file: Path | None = Field(
        None, description="WattBot CSV (id, question, answer_value, ref_id, ...); "
        "default: the 41 shipped training questions",
    )  # fmt: skip
    mode: Literal["closed_book", "rag"] = "rag"
    corpus_dir: Path | None = Field(
        None, description="folder of .txt/.md/.pdf documents (id = file name without "
        "extension); default: a demo corpus from the questions' supporting_materials",
    )  # fmt: skip
    retriever: Retriever = "bm25"
    top_k: int = Field(3, ge=1, le=50)
    chunk_chars: int = Field(800, ge=100, le=20000)
    system_prompt: str | None = None


class WattBotTask:
    name: ClassVar[str] = "wattbot"
    Options: ClassVar[type[BaseModel]] = WattBotOptions
    primary_metric: ClassVar[str] = "overall"

    def __init__(self, options: WattBotOptions) -> None:
        self.options = options

    @staticmethod
    def generation_defaults(options: WattBotOptions, reasoning: bool) -> dict[str, int]:
        return {"max_tokens": 4096 if reasoning else 256, "min_tokens": 0}

    def samples(self) -> list[Sample]:
        rows, origin = _read_questions(self.options.questions_file)
        index = None
        if self.options.mode == "rag":
            docs = (
                load_corpus(self.options.corpus_dir)
                if self.options.corpus_dir is not None
                else demo_corpus(rows, origin)
            )
            index = Index(docs, self.options.retriever, self.options.chunk_chars)
        samples = []
        for i, row in enumerate(rows):
            hits = index.search(row["question"], self.options.top_k) if index else []
            retrieved = [
                {"doc_id": h.passage.doc_id, "chunk": h.passage.chunk,
                 "score": round(h.score, 6), "text": h.passage.text}
                for h in hits
            ]  # fmt: skip
            samples.append(
                Sample(
                    index=i,
                    id=row["id"],
                    prompt=build_prompt(row["question"], retrieved),
                    reference={k: row[k] for k in ("answer_value", "answer_unit", "ref_id")},
                    metadata={"retrieved": retrieved} if index else {},
                )
            )
        return samples

    def messages(self, sample: Sample, system_prompt: str | None) -> list[Message]:
        return chat_messages(sample.prompt, self.options.system_prompt or system_prompt)

    def score(self, sample: Sample, result: GenerationResult) -> dict[str, Any]:
        row, parse_error = submission_row(sample.id, result)
        truth = sample.reference
        q = score_question(sample.id, truth, row)
        score: dict[str, Any] = {
            **{k: row[k] for k in SUBMISSION_COLUMNS[1:]},
            "normalised_value": q.normalised_value,
            "truth_value": truth["answer_value"],
            "value_correct": int(q.value_correct),
            "ref_score": q.ref_score,
            "truth_blank": q.truth_blank,
            "answer_blank": q.answer_blank,
            "parse_error": parse_error,
        }
        if "retrieved" in sample.metadata:
            score["retrieved"] = [
                {"doc_id": r["doc_id"], "chunk": r["chunk"], "score": r["score"]}
                for r in sample.metadata["retrieved"]
            ]
        return score

    @staticmethod
    def aggregate_scores(scores: list[dict[str, Any] | None]) -> dict[str, float]:
        """The WattBot score over all planned samples (see the module docstring)."""
        if not scores:
            return {}
        overall, value, ref, na = combine(
            [int(s["value_correct"]) if s else 0 for s in scores],
            [float(s["ref_score"]) if s else 0.0 for s in scores],
            [bool(s["answer_blank"]) for s in scores if s and s["truth_blank"]],
        )
        return {
            "overall": overall,
            "value_accuracy": value,
            "ref_overlap": ref,
            "na_recall": na,
            "parse_errors": float(sum(1 for s in scores if s and s.get("parse_error"))),
            "unscored": float(sum(1 for s in scores if s is None)),
        }

    @staticmethod
    def run_files(records: list[dict[str, Any]]) -> dict[str, str]:
        """``submission.csv`` in the Kaggle format, one row per stored sample."""
        out = io.StringIO()
        writer = csv.DictWriter(out, SUBMISSION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in sorted(records, key=lambda r: int(r["sample_index"])):
            scores = record.get("scores") or {}
            row = {k: scores.get(k) for k in SUBMISSION_COLUMNS[1:]}
            if not all(row.values()):  # a record stored without a score: still valid
                row = {"answer_value": GENERATION_ERROR, "answer_unit": BLANK,
                       "ref_id": "[]", "explanation": "no scored answer"}  # fmt: skip
            writer.writerow({"id": record["sample_id"], **row})
        return {"submission.csv": out.getvalue()}


def build_prompt(question: str, retrieved: list[dict[str, Any]]) -> str:
    if not retrieved:
        return (
            f"Question: {question}\n{FORMAT}\n"
            'If you do not know, use "is_blank" for answer_value and ref_id.'
        )
    context = "\n".join(f"[{r['doc_id']}] {r['text']}" for r in retrieved)
    return (
        f"Documents:\n{context}\n\nQuestion: {question}\n{FORMAT}\n"
        "ref_id lists the ids of the documents you used. If the documents do not answer "
        'the question, use "is_blank" for answer_value and ref_id.'
    )


def submission_row(qid: str, result: GenerationResult) -> tuple[dict[str, str], str | None]:
    """The Kaggle row for one result, and the parse error (None when parsed)."""
    if result.error:
        first = _first_line(result.error) or "unknown error"
        return {"id": qid, "answer_value": GENERATION_ERROR, "answer_unit": BLANK,
                "ref_id": "[]", "explanation": f"generation failed: {first}"}, None  # fmt: skip
    return parsed_row(qid, parse(result.text), result.text)


def parsed_row(qid: str, parsed: ParsedAnswer, text: str) -> tuple[dict[str, str], str | None]:
    """The Kaggle row for an answer already parsed from ``text``, and the parse error."""
    if not parsed.ok:
        first = _first_line(text) or "(empty)"
        return {"id": qid, "answer_value": PARSE_ERROR, "answer_unit": BLANK, "ref_id": "[]",
                "explanation": f"unparsable model output: {first}"}, parsed.error  # fmt: skip
    value = _one_line(parsed.answer_value)
    refs = ",".join("'" + r.replace("'", "") + "'" for r in parsed.ref_ids)
    return {
        "id": qid,
        "answer_value": BLANK if is_blank(value) else value,
        "answer_unit": _one_line(parsed.answer_unit) or BLANK,
        "ref_id": f"[{refs}]",
        "explanation": _one_line(parsed.explanation) or BLANK,
    }, None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _read_questions(path: Path | None) -> tuple[list[dict[str, str]], str]:
    if path is None:
        text = (
            resources.files("fleetbench.tasks.data")
            .joinpath(BUILTIN_QUESTIONS)
            .read_text(encoding="utf-8")
        )
        origin = f"built-in {BUILTIN_QUESTIONS}"
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ConfigError(f"{path}: cannot read questions file: {reason}") from None
        origin = str(path)
    reader = csv.DictReader(io.StringIO(text))
    names = [n.strip() for n in reader.fieldnames or []]
    if missing := [c for c in REQUIRED if c not in names]:
        raise ConfigError(
            f"{origin}:1: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)}"
        )
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for raw in reader:
        row = {(k or "").strip(): (v or "") for k, v in raw.items() if isinstance(v, str | None)}
        line = reader.line_num
        if not any(v.strip() for v in row.values()):
            continue
        for column in ("id", "question"):
            if not row.get(column, "").strip():
                raise ConfigError(f"{origin}:{line}: field '{column}': must be non-empty")
        row["id"] = row["id"].strip()
        if row["id"] in seen:
            raise ConfigError(f"{origin}:{line}: field 'id': duplicate {row['id']!r}")
        seen.add(row["id"])
        row.setdefault("answer_unit", "")
        rows.append(row)
    if not rows:
        raise ConfigError(f"{origin}: no questions found")
    return rows, origin


def demo_corpus(rows: list[dict[str, str]], origin: str) -> dict[str, str]:
    """One document per ref_id: the supporting materials of the rows citing it."""
    if not any("supporting_materials" in row for row in rows):
        raise ConfigError(
            f"{origin}:1: mode 'rag' without corpus_dir needs a 'supporting_materials' column"
        )
    from fleetbench.scoring.wattbot import parse_ref_ids

    parts: dict[str, list[str]] = {}
    for row in rows:
        text = row.get("supporting_materials", "").strip()
        if is_blank(text):
            continue
        for ref in sorted(parse_ref_ids(row["ref_id"]) - {BLANK}):
            parts.setdefault(ref, []).append(text)
    if not parts:
        raise ConfigError(f"{origin}: no supporting_materials to build the demo corpus from")
    return {ref: "\n".join(texts) for ref, texts in parts.items()}
