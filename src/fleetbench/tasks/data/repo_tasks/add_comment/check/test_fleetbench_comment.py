"""Hidden check: a comment right above clamp's return line, the code unchanged."""

import ast
import unittest
from pathlib import Path

ORIGINAL = '''
def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t
'''


class CommentCheck(unittest.TestCase):
    def test_comment_above_return(self) -> None:
        lines = Path("mathutil.py").read_text(encoding="utf-8").splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("def clamp("))
        ret = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("return"))
        above = lines[ret - 1].strip()
        self.assertTrue(above.startswith("#") and len(above.strip("# ")) >= 3, above)

    def test_code_unchanged(self) -> None:
        source = Path("mathutil.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        tree.body = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        self.assertEqual(ast.dump(tree), ast.dump(ast.parse(ORIGINAL)))


if __name__ == "__main__":
    unittest.main()
