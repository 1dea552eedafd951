"""The audit's per-run checks read the store through their indexes."""

from __future__ import annotations

from pathlib import Path

from test_store import RUN, sample

from fleetbench.report.aggregate import summarize_run
from fleetbench.report.audit import REASONING_CUT_SQL, audit
from fleetbench.store import COMPLETED, Store


def test_samples_cut_off_while_reasoning_are_found_through_their_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "fleetbench.db")
    store.begin_batch("b1", "plan", "test", {}, {}, {})
    store.upsert_run(RUN | {"config": {"energy": {}}}, "b1", 5)
    a = store.start_attempt("r1", "b1", {})
    cut = {"finish_reason": "length", "reasoning_text": "so, first"}
    store.add_sample(sample(0, a, **cut, answer_text="  "))  # cut off: no answer
    store.add_sample(sample(1, a, **cut, answer_text="42"))  # long, but answered
    store.add_sample(sample(2, a, **cut, answer_text="", error="HTTP 500"))  # failed
    store.add_sample(sample(3, a, **cut | {"reasoning_text": ""}, answer_text=""))  # no reasoning
    store.add_sample(sample(4, a, finish_reason="stop", reasoning_text="so", answer_text=""))
    store.finish_attempt("r1", a, COMPLETED, None)

    plan = [r[3] for r in store.conn.execute(f"EXPLAIN QUERY PLAN {REASONING_CUT_SQL}", ("r1", 5))]
    assert any("USING INDEX samples_reasoning_cut" in step for step in plan), plan
    (run,) = store.runs()
    findings = [
        f for f in audit(store, [summarize_run(store, run)]) if f.check == "reasoning cut off"
    ]
    assert [f.message.split(": ", 1)[1][:9] for f in findings] == ["1 sample("]
