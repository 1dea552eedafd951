"""Run metrics from a list of request records (dicts)."""


def _mean(values: list[float]) -> float:
    if not values:
        raise ValueError("no records")
    return sum(values) / len(values)


def mean_latency(records: list[dict[str, float]]) -> float:
    return _mean([record["latency_s"] for record in records])


def mean_tokens(records: list[dict[str, float]]) -> float:
    return _mean([record["tokens"] for record in records])


def error_rate(records: list[dict[str, float]]) -> float:
    return _mean([1.0 if record["error"] else 0.0 for record in records])
