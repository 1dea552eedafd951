"""A worker of ``FolderWorkers``: ``python -m fleetbench.report.fileworker DB``
reads its jobs (a JSON list: run id, planned samples, task, folder, and whether to
bring its sample files up to date and to summarise it) from stdin, does them from the
store opened read-only, and prints one JSON line per run done as it goes (the sample
files' names and sizes, when written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fleetbench.report.exports import write_summary_cache
from fleetbench.report.samplefiles import read_stamp, update_sample_files
from fleetbench.store.sqlite import Store


def main(database: str) -> int:
    jobs = json.loads(sys.stdin.read())
    store = Store.read_only(Path(database), timeout=60.0)
    try:
        rows = {row["run_id"]: row for row in store.runs()}
        for job in jobs:
            folder, files = Path(job["folder"]), None
            if job["files"]:
                files = update_sample_files(
                    store.conn, job["run_id"], int(job["planned"]), job["task"], folder,
                    read_stamp(folder),
                )  # fmt: skip
            if job["summary"]:
                write_summary_cache(store, rows[job["run_id"]], folder)
            print(json.dumps({"run_id": job["run_id"], "files": files}), flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
