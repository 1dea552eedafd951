# The heading is spelled right, the misspelling is gone, the rest is untouched.
grep -qx '## Installation' README.md || exit 1
if grep -qi 'instalation' README.md; then exit 1; fi
grep -qx 'pip install greetlib' README.md || exit 1
grep -qx '## Usage' README.md || exit 1
test "$(wc -l < README.md)" -eq 13
