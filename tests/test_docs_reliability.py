"""docs/reliability.md names real drills: every test file, test and parametrized id it cites
exists. A test is cited as `` `tests/x.py::test_y` `` (or `` `::test_y` `` in the file cited
last); one of its parametrized cases as `` `test_y[id]` `` or, after it, as `` `[id]` ``;
``a|b`` in the brackets names two cases (``[thread|slash-command]``), and ``…`` stands for
any part of an id (``[…-soon]``)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: A backticked span: a test file, a test, or both, with an optional case; or a case alone.
CITATION = re.compile(r"`(?:(tests/[\w/]+\.py)?(?:::)?(test_\w+)?(\[[^\]`\s]+\])?)`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def citations(text: str) -> Iterator[tuple[Path, str, str | None]]:
    """(file, test, case or None) for each test and each case the text cites, in order; a
    case alone belongs to the test cited last. Checks that each file and test exists."""
    current: Path | None = None
    test: str | None = None
    for match in CITATION.finditer(text):
        path, name, case = match.groups()
        if path:
            current = ROOT / path
            assert current.is_file(), path
        if name:
            assert current is not None, name
            assert name in _tests_in(current), f"{current.relative_to(ROOT)}::{name}"
            test = name
            yield current, name, None
        if case and (name or not path):
            assert current is not None and test is not None, f"{case} cites no test"
            for alternative in case[1:-1].split("|"):
                yield current, test, alternative


def collected_cases(files: set[Path]) -> dict[tuple[Path, str], set[str]]:
    """Every parametrized test's case ids in ``files``, as pytest collects them."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "adapters"), os.environ.get("PYTHONPATH", "")]),
    }
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *map(str, sorted(files)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    cases: dict[tuple[Path, str], set[str]] = {}
    for line in found.stdout.splitlines():
        node = re.fullmatch(r"(tests/[\w/]+\.py)::(test_\w+)\[(.+)\]", line.strip())
        if node:
            cases.setdefault((ROOT / node[1], node[2]), set()).add(node[3])
    assert cases or not files, found.stdout[-2000:] + found.stderr[-2000:]
    return cases


def missing_cases(cited: list[tuple[Path, str, str]], cases: dict[tuple[Path, str], set[str]]) -> list[str]:
    """The cited cases that no collected id of their test matches (``…``: any part)."""
    missing = []
    for path, test, case in cited:
        pattern = re.compile(".*".join(re.escape(part) for part in case.split("…")))
        if not any(pattern.fullmatch(i) for i in cases.get((path, test), set())):
            missing.append(f"{path.relative_to(ROOT)}::{test}[{case}]")
    return missing


def test_every_cited_drill_exists() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    cited = list(citations(text))
    assert sum(1 for *_, case in cited if case is None) >= 20
    with_cases = [(path, test, case) for path, test, case in cited if case is not None]
    assert len(with_cases) >= 20
    assert missing_cases(with_cases, collected_cases({path for path, _, _ in with_cases})) == []


def test_a_cited_case_that_does_not_exist_is_caught() -> None:
    """The check above on a text that names a test's real case, two alternatives, a case
    after its test, and one that does not exist: only that one is missing."""
    here = "tests/discord/test_discord_crash_windows.py"
    text = (
        f"`{here}::test_final_edit_in_flight_then_restart[applied|not-applied]`, "
        f"`::test_final_edit_in_flight_then_restart` (`[applied]`, `[half-applied]`); "
        "`[feedback] enabled` is a settings section, not a case"
    )
    cited = [(path, test, case) for path, test, case in citations(text) if case is not None]
    assert [case for *_, case in cited] == ["applied", "not-applied", "applied", "half-applied"]
    missing = missing_cases(cited, collected_cases({ROOT / here}))
    assert missing == [f"{here}::test_final_edit_in_flight_then_restart[half-applied]"]
