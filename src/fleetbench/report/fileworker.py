"""A worker of ``SampleFileWriters``: ``python -m fleetbench.report.fileworker DB``
reads its jobs (a JSON list of run id, planned samples, task and folder) from stdin,
brings each run's sample files up to date from the store opened read-only, and prints one JSON
line per run written (its files' names and sizes) as it goes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fleetbench.report.samplefiles import update_sample_files
from fleetbench.store.sqlite import Store


def main(database: str) -> int:
    jobs = json.loads(sys.stdin.read())
    store = Store.read_only(Path(database), timeout=60.0)
    try:
        for job in jobs:
            files = update_sample_files(
                store.conn, job["run_id"], int(job["planned"]), job["task"], Path(job["folder"])
            )
            print(json.dumps({"run_id": job["run_id"], "files": files}), flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
