"""A worker of ``FolderWorkers``: ``python -m fleetbench.report.fileworker DB JOBS
SIGNAL`` reads its first jobs (a JSON list: run id, planned samples, task, folder, and
whether to bring its sample files up to date and to summarise it) from the file
descriptor JOBS, does them from the store opened read-only, printing one JSON line per
run done as it goes (the sample files' names and sizes, when written), and writes a
byte to the pipe SIGNAL. Then it reads one line from stdin: the runs' documents to
write (``exports.write_run_files``: the run's row as a dict, its summary, folder,
samples stamp and sample files), a JSON line each when written; at the end of stdin it
ends."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from fleetbench import jsontext
from fleetbench.report.exports import write_run_files, write_summary_cache
from fleetbench.report.samplefiles import read_stamp, update_sample_files
from fleetbench.store.sqlite import Store


def main(database: str, jobs_fd: int, signal_fd: int) -> int:
    with os.fdopen(jobs_fd) as f:
        jobs = json.load(f)
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
        os.write(signal_fd, b"1")
        os.close(signal_fd)
        line = sys.stdin.buffer.readline()
        for doc in jsontext.loads(line) if line.strip() else []:
            run = doc["run"]
            write_run_files(
                store, run, doc["summary"], Path(doc["folder"]), doc["stamp"], doc["files"]
            )
            print(json.dumps({"run_id": run["run_id"], "documents": True}), flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
