"""Copy a results folder to object storage: any fsspec URL (``s3://``, ``gs://``,
``az://``, ``file://``).

What goes up: a consistent snapshot of the store (SQLite's backup API into a
temporary file — never a file copy of a live database), ``master_results.csv``, the
``exports/`` folder and every run folder, under the same relative paths, so
uploading twice gives the same bucket (idempotent). Files unchanged since the last
successful upload to the same URL (size and mtime, in ``.upload-state.json``) are not
sent again; the snapshot always is.

Credentials come only from each cloud's own chain (environment, config files,
instance roles), through fsspec's backends (s3fs, gcsfs, adlfs); nothing is passed
or logged. Every file is tried ``RETRIES`` times with backoff; a failed upload is
recorded in the store's ``uploads`` table and the next round uploads again. Between
scheduled rounds the copy runs in a background thread (``BackgroundUploader``) so it
never delays a measurement.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetbench.errors import ConfigError
from fleetbench.fsutil import atomic_write_text, read_json_object
from fleetbench.report.samples_export import EXPORTS_DIR, FORMATS, export_samples
from fleetbench.store import DB_NAME, Store

RETRIES = 3
STATE_FILE = ".upload-state.json"
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}
_SKIP = {STATE_FILE, DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", ".fleetbench.lock"}


def check_url(url: str) -> None:
    """A URL fsspec can write to here, or a one-line error saying what to install."""
    import fsspec

    protocol = fsspec.utils.get_protocol(url)
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise ConfigError(f"upload {url!r}: unknown storage protocol {protocol!r}") from None
    except ImportError:
        extra = EXTRAS.get(protocol, protocol)
        raise ConfigError(
            f"upload {url!r}: {protocol}:// needs its fsspec backend; run: "
            f"pip install 'fleetbench[{extra}]'"
        ) from None


@dataclass(frozen=True)
class UploadResult:
    ok: bool
    files: int
    bytes: int
    error: str | None


def upload(output: Path, url: str) -> UploadResult:
    """Upload ``output`` to ``url`` now; the outcome is recorded in the store."""
    store = Store.in_dir(output)
    try:
        started = time.time()
        cur = store.conn.execute(
            "INSERT INTO uploads (url, started_at, status) VALUES (?, ?, 'running')",
            (url, started),
        )
        upload_id = cur.lastrowid
        try:
            result = _upload(store, output, url)
        except Exception as exc:  # recorded; the next round tries again
            result = UploadResult(False, 0, 0, f"{type(exc).__name__}: {exc}")
        store.conn.execute(
            "UPDATE uploads SET finished_at = ?, status = ?, files = ?, bytes = ?, error = ? "
            "WHERE upload_id = ?",
            (time.time(), "done" if result.ok else "failed", result.files, result.bytes,
             result.error, upload_id),
        )  # fmt: skip
        return result
    finally:
        store.close()


def _upload(store: Store, output: Path, url: str) -> UploadResult:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    refresh_exports(store, output)
    state_path = output / STATE_FILE
    state = _load_state(state_path, url)
    sent = size = 0
    with tempfile.TemporaryDirectory(prefix="fleetbench-upload-") as tmp:
        snapshot = Path(tmp) / DB_NAME
        _snapshot(store.conn, snapshot)
        files: list[tuple[Path, str, list[int] | None]] = [(snapshot, DB_NAME, None)]
        for path in sorted(output.rglob("*")):
            rel = path.relative_to(output).as_posix()
            if not path.is_file() or rel in _SKIP or any(p.startswith(".") for p in rel.split("/")):
                continue
            stat = path.stat()
            mark = [stat.st_size, stat.st_mtime_ns]
            if state.get(rel) == mark:
                continue
            files.append((path, rel, mark))
        for local, rel, known in files:
            _put(fs, local, f"{root}/{rel}")
            sent += 1
            size += local.stat().st_size
            if known is not None:
                state[rel] = known
    _save_state(state_path, url, state)
    return UploadResult(True, sent, size, None)


def refresh_exports(store: Store, output: Path) -> None:
    """The time-series exports, current: ``exports/samples.csv`` always, and every other
    ``exports/samples.<format>`` already there (``fleetbench export samples``)."""
    folder = output / EXPORTS_DIR
    formats = {"csv"} | {p.suffix[1:] for p in folder.glob("samples.*") if p.suffix[1:] in FORMATS}
    for fmt in sorted(formats):
        export_samples(store, folder / f"samples.{fmt}", fmt)


def _snapshot(conn: sqlite3.Connection, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while workers write."""
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    finally:
        dest.close()


def _put(fs: Any, local: Path, remote: str) -> None:
    # Folders exist only on file systems; on object stores makedirs would even create a
    # missing bucket (s3fs), and a wrong bucket name must fail instead.
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    parent = remote.rsplit("/", 1)[0] if "file" in protocols or "local" in protocols else ""
    for attempt in range(1, RETRIES + 1):
        try:
            if parent:
                fs.makedirs(parent, exist_ok=True)
            fs.put_file(str(local), remote)
            return
        except Exception:
            if attempt == RETRIES:
                raise
            time.sleep(0.5 * 2 ** (attempt - 1))


def _load_state(path: Path, url: str) -> dict[str, Any]:
    got = read_json_object(path).get(url)
    return dict(got) if isinstance(got, dict) else {}


def _save_state(path: Path, url: str, state: dict[str, Any]) -> None:
    data = read_json_object(path)
    data[url] = state
    atomic_write_text(path, json.dumps(data))


class BackgroundUploader:
    """One upload at a time in a background thread; a round that ends while the last
    upload still runs starts none (the next one carries its files too)."""

    def __init__(self, output: Path, url: str) -> None:
        self.output, self.url = output, url
        self._thread: threading.Thread | None = None
        self.last: UploadResult | None = None

    def start(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return False
        self._thread = threading.Thread(target=self._run, name="fleetbench-upload", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        self.last = upload(self.output, self.url)

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
