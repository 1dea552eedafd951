"""Uploads to a file:// URL: snapshot, exports and run files land under the prefix;
the background uploader runs one upload at a time and records it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from test_samples_export import build

from fleetbench.report.upload import BackgroundUploader, upload


def test_file_url_and_background(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    store = build(out)
    (out / "runs" / "r1").mkdir(parents=True)
    (out / "runs" / "r1" / "summary.json").write_text("{}")
    dest = tmp_path / "bucket" / "prefix"
    result = upload(out, f"file://{dest}")
    assert result.ok, result.error
    assert (dest / "runs" / "r1" / "summary.json").read_text() == "{}"
    assert (dest / "exports" / "samples.csv").read_text().count("\n") == 5  # header + 4
    conn = sqlite3.connect(dest / "fleetbench.db")
    assert conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 4
    conn.close()

    background = BackgroundUploader(out, f"file://{dest}")
    assert background.start()
    background.wait(60)
    assert background.last is not None and background.last.ok
    assert background.last.files < result.files  # the unchanged run file was not sent again
    uploads = store.conn.execute("SELECT status FROM uploads").fetchall()
    assert [u[0] for u in uploads] == ["done", "done"]
