"""Per-run figures from the server's own timing of each request (``samples.
server_timing_json``: Ollama's native API reports model load, prompt-eval and eval
counts and durations; see ``backends.ollama_native``), aggregated in SQL.

* ``server_load_seconds``: the model load time the server reported, summed over the
  run's requests (the first one loads the model; later ones report next to nothing).
* ``server_prompt_eval_tokens_per_second``: prompt tokens the server evaluated ÷ the
  time it spent on them (a cached prompt prefix is not evaluated again, so this is
  the server's prefill speed, not prompt length ÷ TTFT).
* ``server_eval_tokens_per_second``: generated tokens ÷ the server's generation time:
  decode speed without the network and the client.

Over the successful samples of the current plan; empty (None) when the server reported
no timing (every backend but ``openai`` with ``api: native``).
"""

from __future__ import annotations

from typing import Any

from fleetbench.store import Store

SERVER_TIMING_COLUMNS = [
    "server_load_seconds",
    "server_prompt_eval_tokens_per_second",
    "server_eval_tokens_per_second",
]


def _field(name: str) -> str:
    return f"json_extract(server_timing_json, '$.{name}')"


def server_timing(store: Store, run_id: str, below: int) -> dict[str, Any]:
    row = store.conn.execute(
        f"SELECT COUNT(*) AS n, SUM({_field('load_s')}) AS load, "
        f"SUM({_field('prompt_eval_tokens')}) AS pt, SUM({_field('prompt_eval_s')}) AS ps, "
        f"SUM({_field('eval_tokens')}) AS et, SUM({_field('eval_s')}) AS es "
        "FROM samples WHERE run_id = ? AND sample_index < ? AND error IS NULL "
        "AND server_timing_json IS NOT NULL",
        (run_id, below),
    ).fetchone()
    if not row["n"]:
        return dict.fromkeys(SERVER_TIMING_COLUMNS)
    return {
        "server_load_seconds": row["load"],
        "server_prompt_eval_tokens_per_second": _rate(row["pt"], row["ps"]),
        "server_eval_tokens_per_second": _rate(row["et"], row["es"]),
    }


def _rate(tokens: float | None, seconds: float | None) -> float | None:
    if tokens is None or not seconds or seconds <= 0:
        return None
    return float(tokens) / float(seconds)
