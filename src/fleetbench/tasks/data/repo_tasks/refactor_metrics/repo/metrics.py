"""Run metrics from a list of request records (dicts)."""


def mean_latency(records: list[dict[str, float]]) -> float:
    if not records:
        raise ValueError("no records")
    total = 0.0
    for record in records:
        total += record["latency_s"]
    return total / len(records)


def mean_tokens(records: list[dict[str, float]]) -> float:
    if not records:
        raise ValueError("no records")
    total = 0.0
    for record in records:
        total += record["tokens"]
    return total / len(records)


def error_rate(records: list[dict[str, float]]) -> float:
    if not records:
        raise ValueError("no records")
    total = 0.0
    for record in records:
        total += 1.0 if record["error"] else 0.0
    return total / len(records)
