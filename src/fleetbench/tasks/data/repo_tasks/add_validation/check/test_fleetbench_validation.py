"""Hidden check: bad inputs raise ValueError, good ones give the old results."""

import unittest

from shop import apply_discount


class ValidationCheck(unittest.TestCase):
    def test_valid_inputs_unchanged(self) -> None:
        for price, percent in [(200, 25), (10, 0), (0, 50), (99.5, 100), (80, 12.5)]:
            self.assertAlmostEqual(apply_discount(price, percent), price * (100 - percent) / 100)

    def test_negative_price(self) -> None:
        with self.assertRaises(ValueError):
            apply_discount(-1, 10)

    def test_percent_out_of_range(self) -> None:
        for percent in (-0.5, -10, 100.5, 150):
            with self.assertRaises(ValueError):
                apply_discount(100, percent)


if __name__ == "__main__":
    unittest.main()
