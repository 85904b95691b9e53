"""The code's shape as issue 15 fixed it: no class over 400 lines and no function over 100 in the package.

A class that big holds several jobs and a function that long several steps; the limit is checked here,
with the other habits (mypy, ruff) in CI, so that it holds as the code grows, not only on the day it was
set. Lines are counted from the ``def``/``class`` line to the last line of the body, docstrings included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import syndicate

PACKAGE = Path(syndicate.__file__).parent
MAX_CLASS_LINES = 400
MAX_FUNCTION_LINES = 100


def _oversized() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
                if lines > limit:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_no_class_over_400_lines_and_no_function_over_100() -> None:
    assert _oversized() == []
