"""Reports: aggregates, the master CSV, terminal tables.

The names below load on first use: the plan imports ``report.stars``, and neither a
worker nor a batch before its first run needs the aggregates (benchmarks/makespan.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetbench.report.aggregate import summarize_run
    from fleetbench.report.master import MASTER_COLUMNS, MASTER_FILE, write_master_csv

_WHERE = {
    "summarize_run": "fleetbench.report.aggregate",
    **dict.fromkeys(
        ("MASTER_COLUMNS", "MASTER_FILE", "write_master_csv"), "fleetbench.report.master"
    ),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fleetbench.report' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["MASTER_COLUMNS", "MASTER_FILE", "summarize_run", "write_master_csv"]
