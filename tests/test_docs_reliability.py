"""docs/reliability.md names real drills: every test file and test it cites exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_cited_drill_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    current: Path | None = None
    cited = 0
    for match in re.finditer(r"`(tests/[\w/]+\.py)?(?:::)?(test_\w+)?`", text):
        path, name = match.group(1), match.group(2)
        if path:
            current = ROOT / path
            assert current.is_file(), path
        if name:
            assert current is not None, name
            assert name in _tests_in(current), f"{current.relative_to(ROOT)}::{name}"
            cited += 1
    assert cited >= 20
