"""fleetbench: run a fleet of language models through benchmarks in one batch."""

__version__ = "0.1.0"
