"""Reports: aggregates, the master CSV, terminal tables."""

from fleetbench.report.aggregate import summarize_run
from fleetbench.report.master import MASTER_COLUMNS, MASTER_FILE, write_master_csv

__all__ = ["MASTER_COLUMNS", "MASTER_FILE", "summarize_run", "write_master_csv"]
