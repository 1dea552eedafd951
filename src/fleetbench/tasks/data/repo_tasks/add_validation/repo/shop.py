"""Prices in a small shop."""


def apply_discount(price: float, percent: float) -> float:
    """The price after taking ``percent`` percent off."""
    return price * (100 - percent) / 100
