"""Never a partial key on disk: ``fleetbench run`` against a server that echoes the key
(and a ``base_url``'s password) at every offset around each point where error text is
cut; no file of the output folder (store, results, run.log, job.json, CSV) and nothing
printed may hold any 12 characters of either."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from conftest import db_rows, run_cli
from echoserver import KINDS, EchoServer

KEY = "SK-PLANTED-QXZRWVYTUKMN"  # 23 characters; no 12 of them occur in the filler
PASSWORD = "PW-9F8E7D6C5B4A39281706"
# The cuts: 300 characters of every error (what precedes the server's text is 10 to
# 50 characters long), and the 80 characters an unparseable stream event used to keep.
OFFSETS = {kind: list(range(225, 300)) for kind in KINDS}
OFFSETS["event"] += list(range(50, 85))


def fragments(secret: str, n: int = 12) -> list[bytes]:
    return [secret[i : i + n].encode() for i in range(len(secret) - n + 1)]


def entry(name: str, base_url: str, **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "id": "someone/echo",
        "backend": "openai",
        "options": {
            "base_url": base_url,
            "model": "echo",
            "max_retries": 1,
            "backoff_base_s": 0.0,
            "backoff_max_s": 0.0,
            "concurrency": 4,
            **options,
        },
    }


def test_echoed_key_and_password_never_reach_any_output(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FB_ECHO_KEY", KEY)
    prompts = tmp_path / "prompts.jsonl"
    lines = [
        json.dumps({"id": f"{kind}-{o}", "prompt": f"[{kind} {o}]"})
        for kind in KINDS
        for o in OFFSETS[kind]
    ]
    prompts.write_text("\n".join(lines) + "\n")
    with EchoServer() as echo:
        with_password = echo.base_url.replace("http://", f"http://fbuser:{PASSWORD}@")
        refusing = with_password.replace("/v1", "/refuse-280/v1")
        plan = {
            "name": "echo",
            "models": [
                entry("keyed", echo.base_url, api_key_env="FB_ECHO_KEY"),
                entry("basic", with_password),
                entry("refused", refusing),  # the server check fails, quoting it
            ],
            "tasks": [{"name": "textgen", "options": {"prompts_file": str(prompts)}}],
            "generation": {"max_tokens": 4},
        }
        (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
        out = tmp_path / "out"
        proc = run_cli("run", "plan.yaml", "-o", str(out), cwd=tmp_path, timeout=600)
        seen = {auth for _, auth in echo.seen}
    assert "Traceback" not in proc.stderr, proc.stderr
    basic = "Basic " + base64.b64encode(f"fbuser:{PASSWORD}".encode()).decode()
    assert seen == {f"Bearer {KEY}", basic}  # both credentials were really sent

    samples = db_rows(out, "SELECT error FROM samples")
    assert len(samples) == 2 * sum(len(o) for o in OFFSETS.values())
    assert all(s["error"] for s in samples)  # every sample failed, with its reason
    assert any("***" in s["error"] for s in samples)
    runs = {r["model_name"]: r for r in db_rows(out, "SELECT * FROM runs")}
    assert "refused the request" in (runs["refused"]["error_message"] or "")

    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"run.log", "job.json", "results.jsonl", "master_results.csv"} <= names
    printed = (proc.stdout + proc.stderr).encode()
    for secret in (KEY, PASSWORD, basic.split()[1]):
        for piece in fragments(secret):
            assert piece not in printed, piece
            for path in files:
                assert piece not in path.read_bytes(), (piece, path)
