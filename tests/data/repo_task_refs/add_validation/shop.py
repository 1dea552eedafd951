"""Prices in a small shop."""


def apply_discount(price: float, percent: float) -> float:
    """The price after taking ``percent`` percent off."""
    if price < 0:
        raise ValueError(f"price must not be negative, got {price}")
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent}")
    return price * (100 - percent) / 100
