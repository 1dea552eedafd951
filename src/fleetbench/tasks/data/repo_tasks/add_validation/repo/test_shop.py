import unittest

from shop import apply_discount


class DiscountTest(unittest.TestCase):
    def test_discount(self) -> None:
        self.assertEqual(apply_discount(200, 25), 150)
        self.assertEqual(apply_discount(10, 0), 10)


if __name__ == "__main__":
    unittest.main()
