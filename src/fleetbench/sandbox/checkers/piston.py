"""The ``piston`` checker: each test sent to a Piston v2 code-execution service.

``GET /api/v2/runtimes`` is read once, in ``validate``, before any work: an endpoint
that is down, answers something other than a runtime list, or lacks a language is one
line (``ConfigError``). Each test is then ``POST /api/v2/execute`` with the solution as
one file, the test's stdin and its limits (``run_timeout`` in ms, ``run_memory_limit``
in bytes). Piston reports a compile stage for compiled languages and a run stage; a
time-out shows as ``status: "TO"`` (newer Piston) or a SIGKILL after the run timeout
(older). A 4xx/5xx answer carries ``{"message": ...}``, kept as the test's detail.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from fleetbench.errors import ConfigError
from fleetbench.sandbox.checkers import Ending, Execution, RunLimits

DEFAULT_ENDPOINT = "http://localhost:2000"
_FILE_NAMES = {"python": "main.py", "c++": "main.cpp", "c": "main.c", "java": "Main.java",
               "javascript": "main.js", "rust": "main.rs", "go": "main.go"}  # fmt: skip
_STATUS: dict[str, Ending] = {
    "TO": "time_limit", "SG": "runtime_error", "RE": "runtime_error",
    "OL": "runtime_error", "EL": "runtime_error", "XX": "error",
}  # fmt: skip


class PistonChecker:
    name = "piston"

    def __init__(self, endpoint: str, *, connect_timeout_s: float = 5.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._timeout = connect_timeout_s
        self._client = httpx.Client(timeout=httpx.Timeout(60.0, connect=connect_timeout_s))
        self.versions: dict[str, tuple[str, str]] = {}  # name or alias -> (language, version)

    def _down(self, exc: Exception) -> ConfigError:
        return ConfigError(f"--endpoint {self.endpoint}: Piston is not reachable ({exc}); "
                           "start it or pass the right --endpoint")  # fmt: skip

    def validate(self, languages: set[str]) -> None:
        url = f"{self.endpoint}/api/v2/runtimes"
        try:
            response = self._client.get(url, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise self._down(exc) from None
        try:
            runtimes = response.json() if response.status_code == 200 else None
        except ValueError:
            runtimes = None
        if not isinstance(runtimes, list):
            raise ConfigError(f"{url}: HTTP {response.status_code}, not a Piston runtime list")
        for runtime in runtimes:
            if not isinstance(runtime, dict):
                continue
            language, version = str(runtime.get("language")), str(runtime.get("version"))
            for name in [language, *map(str, runtime.get("aliases") or [])]:
                self.versions.setdefault(name.lower(), (language, version))
        missing = sorted(lang for lang in languages if lang.lower() not in self.versions)
        if missing:
            have = ", ".join(sorted({lang for lang, _ in self.versions.values()})) or "none"
            raise ConfigError(f"language {missing[0]!r}: not installed on the Piston service at "
                              f"{self.endpoint}; valid: {have}")  # fmt: skip

    def execute(self, code: str, language: str, stdin: str, limits: RunLimits) -> Execution:
        lang, version = self.versions[language.lower()]
        body = {
            "language": lang, "version": version,
            "files": [{"name": _FILE_NAMES.get(lang, "main"), "content": code}],
            "stdin": stdin, "args": [],
            "run_timeout": int(limits.time_s * 1000),
            "run_memory_limit": limits.memory_mb * 2**20,
        }  # fmt: skip
        start = time.monotonic()
        try:
            response = self._client.post(f"{self.endpoint}/api/v2/execute", json=body,
                                         timeout=limits.time_s + 30.0)  # fmt: skip
        except httpx.HTTPError as exc:
            raise self._down(exc) from None
        duration = round(time.monotonic() - start, 4)
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            return Execution("error", detail=f"Piston HTTP {response.status_code}: "
                             f"{message or response.text[:200]}", duration_s=duration)  # fmt: skip
        return _ending(data, limits, duration)


def _stage(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    stage = data.get(name)
    return stage if isinstance(stage, dict) else None


def _ending(data: dict[str, Any], limits: RunLimits, duration: float) -> Execution:
    compile_ = _stage(data, "compile")
    if compile_ is not None and compile_.get("code") not in (0, None):
        text = str(compile_.get("stderr") or compile_.get("output") or "").strip()
        detail = text.splitlines()[-1][:300] if text else f"compiler exit {compile_.get('code')}"
        return Execution("compile_error", detail=detail, duration_s=duration)
    run = _stage(data, "run")
    if run is None:
        return Execution("error", detail="Piston answered no run stage", duration_s=duration)
    stdout, stderr = str(run.get("stdout") or ""), str(run.get("stderr") or "")
    status, signal, code = run.get("status"), run.get("signal"), run.get("code")
    last = stderr.strip().splitlines()[-1][:300] if stderr.strip() else ""
    if status in _STATUS:
        detail = str(run.get("message") or last or status)
        return Execution(_STATUS[str(status)], stdout, detail, duration)
    if signal == "SIGKILL" and code is None:  # older Piston: killed at the run timeout
        return Execution("time_limit", stdout, f"killed after {limits.time_s:g} s", duration)
    if signal or code != 0:
        what = f"killed by {signal}" if signal else f"exit code {code}"
        return Execution("runtime_error", stdout, f"{what}: {last}" if last else what, duration)
    return Execution("exited", stdout, "exit code 0", duration)
