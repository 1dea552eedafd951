import unittest

import metrics

RECORDS = [
    {"latency_s": 1.0, "tokens": 10, "error": 0},
    {"latency_s": 3.0, "tokens": 30, "error": 1},
]


class MetricsTest(unittest.TestCase):
    def test_means(self) -> None:
        self.assertEqual(metrics.mean_latency(RECORDS), 2.0)
        self.assertEqual(metrics.mean_tokens(RECORDS), 20.0)
        self.assertEqual(metrics.error_rate(RECORDS), 0.5)

    def test_empty(self) -> None:
        for fn in (metrics.mean_latency, metrics.mean_tokens, metrics.error_rate):
            with self.assertRaises(ValueError):
                fn([])


if __name__ == "__main__":
    unittest.main()
