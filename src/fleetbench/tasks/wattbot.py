"""``wattbot``: WattBot 2025 question answering, closed-book or retrieval-augmented.

Each question's prompt asks for one JSON object (answer_value, answer_unit, ref_id list,
explanation). What the model may read is the option ``corpus``/``corpus_dir``, recorded
with every run as its ``retrieval_corpus`` (master CSV, summaries):

* ``closed-book`` (the default): the question alone.
* a folder (``corpus_dir``): the ``top_k`` passages retrieved for the question (once, when
  the samples are built) are shown labelled by document id and stored with the sample
  (``metadata`` and the score's ``retrieved``).
* ``oracle_passages``: the same, from a corpus built from the questions file's own
  ``supporting_materials`` column (one document per ref_id). That column *is* the gold
  evidence, so this measures reading, not retrieval: an upper bound, never the default.

Scoring reproduces ``fleetbench score wattbot`` (scoring/wattbot.py): each sample's score
holds the exact submission row it produces, scored by the scorer's own functions on the
cells as the scorer reads them back (the questions' truth columns as pandas would read the
questions file; a written answer pandas reads as missing, such as ``None``, as ``nan``),
and ``aggregate_scores`` combines them as the scorer does, so a run's ``overall`` equals
the score of its ``submission.csv`` against the same questions. Choices:

* Unparsable output is a wrong answer: answer_value ``parse_error`` (never blank, never a
  number), ref_id ``[]``, explanation ``unparsable model output: <first line>``; the raw text
  stays in the stored sample. A failed generation likewise uses ``generation_error``.
* Blank fields (an abstention, an empty unit or explanation) are written ``is_blank``: the
  scorer reads an empty cell as ``nan``, which is not blank.
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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleetbench.backends.base import GenerationResult, Message
from fleetbench.errors import ConfigError
from fleetbench.scoring import pandas_csv
from fleetbench.scoring.coverage import coverage_score, retrieval_recall
from fleetbench.scoring.pandas_csv import as_read
from fleetbench.scoring.wattbot import (
    BLANK,
    combine,
    is_blank,
    normalise,
    parse_ref_ids,
    score_question,
)
from fleetbench.tasks.answer_json import ParsedAnswer, parse
from fleetbench.tasks.base import NO_ANSWER, Answer, Sample, Task, chat_messages
from fleetbench.tasks.retrieval import Index, Retriever, load_corpus

BUILTIN_QUESTIONS = "wattbot_train_QA.csv"
REQUIRED = ("id", "question", "answer_value", "ref_id")
SUBMISSION_COLUMNS = ("id", "answer_value", "answer_unit", "ref_id", "explanation")
PARSE_ERROR, GENERATION_ERROR = "parse_error", "generation_error"
CLOSED_BOOK, ORACLE = "closed-book", "oracle_passages"
TRUTH_COLUMNS = ("answer_value", "answer_unit", "ref_id")
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
    corpus: Literal["closed_book", "closed-book", "oracle_passages"] | None = Field(
        None, description="closed_book (the default without corpus_dir): the question "
        "alone; oracle_passages: retrieval over each question's own supporting_materials, "
        "i.e. the gold passages (an upper bound, not a retrieval result)",
    )  # fmt: skip
    corpus_dir: Path | None = Field(
        None, description="folder of .txt/.md/.pdf documents to retrieve from "
        "(id = file name without extension)",
    )  # fmt: skip
    retriever: Retriever = "bm25"
    top_k: int = Field(3, ge=1, le=50)
    chunk_chars: int = Field(800, ge=100, le=20000)
    system_prompt: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _old_mode(cls, data: Any) -> Any:
        """``mode`` (before ``corpus``), in plans and in stored runs: ``closed_book`` is
        closed-book; ``rag`` retrieves from ``corpus_dir`` or, without one, from the
        oracle passages, which is what it did."""
        if not isinstance(data, dict) or "mode" not in data:
            return data
        data = dict(data)
        mode = data.pop("mode")
        if data.get("corpus") is not None:
            raise ValueError("mode is the old spelling of corpus; give only corpus")
        if mode == "closed_book":
            data.update(corpus="closed_book", corpus_dir=None)
        elif mode == "rag":
            if data.get("corpus_dir") is None:
                data["corpus"] = ORACLE
        else:
            raise ValueError(
                f"mode {mode!r}: mode is replaced by corpus (closed_book or oracle_passages) "
                "and corpus_dir (a folder of documents)"
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> WattBotOptions:
        if self.corpus is not None and self.corpus_dir is not None:
            raise ValueError(
                f"corpus {self.corpus!r} and corpus_dir both say what to read; give one"
            )
        return self

    def retrieval_corpus(self) -> str:
        """``closed-book``, ``oracle_passages`` or the corpus folder."""
        if self.corpus_dir is not None:
            return str(self.corpus_dir)
        return ORACLE if self.corpus == ORACLE else CLOSED_BOOK


class WattBotTask(Task):
    name: ClassVar[str] = "wattbot"
    Options: ClassVar[type[BaseModel]] = WattBotOptions
    primary_metric: ClassVar[str] = "overall"

    def __init__(self, options: WattBotOptions) -> None:
        self.options = options

    @staticmethod
    def generation_defaults(options: WattBotOptions, reasoning: bool) -> dict[str, int]:
        return {"max_tokens": 4096 if reasoning else 256, "min_tokens": 0}

    @staticmethod
    def retrieval_corpus(options: dict[str, Any]) -> str:
        """A run's ``retrieval_corpus`` label, from its recorded options."""
        try:
            return WattBotOptions.model_validate(options).retrieval_corpus()
        except ValidationError:
            return "unknown"

    def samples(self) -> list[Sample]:
        rows, origin = _read_questions(self.options.questions_file)
        index = None
        docs = None
        if self.options.corpus_dir is not None:
            docs = load_corpus(self.options.corpus_dir)
        elif self.options.corpus == ORACLE:
            docs = oracle_passages(rows, origin)
        if docs is not None:
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
        read_back = {k: as_read(row[k]) for k in ("answer_value", "ref_id")}
        q = score_question(sample.id, truth, read_back)
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
            passages = sample.metadata["retrieved"]
            answer = " ".join(str(row[k] or "") for k in ("answer_value", "answer_unit",
                                                             "explanation"))  # fmt: skip
            score["coverage_score"] = coverage_score(
                answer if parse_error is None else result.text, (p["text"] for p in passages)
            )
            score["retrieval_recall"] = retrieval_recall(
                parse_ref_ids(str(truth["ref_id"])), (p["doc_id"] for p in passages)
            )
            score["retrieved"] = [
                {"doc_id": r["doc_id"], "chunk": r["chunk"], "score": r["score"]}
                for r in sample.metadata["retrieved"]
            ]
        return score

    def read_answer(self, sample: Sample, text: str) -> Answer:
        """The parsed answer_value normalised by the scorer's own ``normalise`` (so
        ``about 1,200`` and ``1200`` agree); blank by the scorer's own ``is_blank``;
        confidence is the answer's self-reported ``confidence`` (0..1 or a percentage).
        Unparsable output is no answer."""
        parsed = parse(text)
        row, parse_error = parsed_row(sample.id, parsed, text)
        if parse_error is not None:
            return NO_ANSWER
        key = normalise(row["answer_value"])
        return Answer(key=key, blank=key == BLANK, confidence=parsed.confidence)

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
            **_means(scores, ("coverage_score", "retrieval_recall")),
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
    try:
        table = pandas_csv.parse(text)
    except pandas_csv.CsvReadError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if missing := [c for c in REQUIRED if c not in table.header]:
        near = [repr(c) for c in table.header if c.strip() in missing]
        hint = f" (found {', '.join(near)}: names must match exactly)" if near else ""
        raise ConfigError(
            f"{origin}:1: missing column(s) {', '.join(missing)}; required: "
            f"{', '.join(REQUIRED)}{hint}"
        )
    # The truth as the scorer reads the questions file (types inferred per column, NA
    # strings as "nan"), so a run's score equals its submission.csv's score.
    truth = {c: table.column(c).values for c in TRUTH_COLUMNS if c in table.header}
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, raw in enumerate(table.raw):
        line = table.lines[i]
        row: dict[str, str] = {}
        for name, cell in zip(table.header, raw, strict=True):
            row.setdefault(name, cell or "")
        if not any(v.strip() for v in row.values()):
            continue
        for column in ("id", "question"):
            if not row[column].strip():
                raise ConfigError(f"{origin}:{line}: field '{column}': must be non-empty")
        if row["id"] in seen:
            raise ConfigError(f"{origin}:{line}: field 'id': duplicate {row['id']!r}")
        seen.add(row["id"])
        row.update({c: truth[c][i] if c in truth else "" for c in TRUTH_COLUMNS})
        rows.append(row)
    if not rows:
        raise ConfigError(f"{origin}: no questions found")
    return rows, origin


def oracle_passages(rows: list[dict[str, str]], origin: str) -> dict[str, str]:
    """One document per ref_id: the supporting materials of the rows citing it (the gold
    evidence of those very questions, hence an upper bound)."""
    if not any("supporting_materials" in row for row in rows):
        raise ConfigError(
            f"{origin}:1: corpus 'oracle_passages' needs a 'supporting_materials' column"
        )
    parts: dict[str, list[str]] = {}
    for row in rows:
        text = row.get("supporting_materials", "").strip()
        if is_blank(text):
            continue
        for ref in sorted(parse_ref_ids(row["ref_id"]) - {BLANK, ""}):
            parts.setdefault(ref, []).append(text)
    if not parts:
        raise ConfigError(f"{origin}: no supporting_materials to build oracle_passages from")
    return {ref: "\n".join(texts) for ref, texts in parts.items()}


def _means(scores: list[dict[str, Any] | None], keys: tuple[str, ...]) -> dict[str, float]:
    """The mean of each grounding figure over the samples that have one (retrieval runs)."""
    out: dict[str, float] = {}
    for key in keys:
        values = [float(s[key]) for s in scores if s and s.get(key) is not None]
        if values:
            out[key] = sum(values) / len(values)
    return out
