"""What the benchmark scripts share: the built-in textgen prompts, read by the task itself."""

from __future__ import annotations

import sys

from fleetbench.tasks.textgen import TextGenOptions, TextGenTask


def builtin_prompts(n: int, cycle: bool = False) -> list[str]:
    """The first ``n`` built-in prompts; ``cycle`` repeats them past the ~20 shipped."""
    prompts = [s.prompt for s in TextGenTask(TextGenOptions()).samples()]
    if cycle:
        if n < 1:
            sys.exit("--prompts must be >= 1")
        return [prompts[i % len(prompts)] for i in range(n)]
    if not 1 <= n <= len(prompts):
        sys.exit(f"--prompts must be between 1 and {len(prompts)}")
    return prompts[:n]
