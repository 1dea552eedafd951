"""Small numeric helpers."""


def clamp(value: float, low: float, high: float) -> float:
    # Limit value to the range [low, high].
    return max(low, min(value, high))


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t
