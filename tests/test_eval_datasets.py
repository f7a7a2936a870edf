"""The shipped eval datasets: the math set's answers are what sympy computes, and the file is
what its generator writes; the format sets load and check something on every line."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sympy

from botkit.eval.dataset import load_dataset
from botkit.eval.grading import math_equal

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "datasets"
X = sympy.Symbol("x")


def _sympy_answer(verify: str) -> sympy.Basic:
    """Solved here, independently of the generator: an expression's exact value, or an equation's
    solutions in x."""
    if "=" in verify:
        left, right = verify.split("=")
        solutions = sympy.solve(sympy.sympify(left) - sympy.sympify(right), X)
        return sympy.FiniteSet(*solutions) if len(solutions) > 1 else solutions[0]
    return sympy.sympify(verify, rational=True)


def test_the_math_set_is_large_and_covers_every_kind() -> None:
    questions = load_dataset(DATASETS / "math.jsonl")
    assert len(questions) >= 100
    kinds = Counter(tag for q in questions for tag in q.tags)
    assert set(kinds) == {"arithmetic", "fractions", "linear", "quadratic", "word"}
    assert min(kinds.values()) >= 15


def test_every_shipped_math_answer_is_what_sympy_computes() -> None:
    for q in load_dataset(DATASETS / "math.jsonl"):
        assert q.answer is not None and q.verify is not None, q.id
        expected = _sympy_answer(q.verify)
        shown = (
            sympy.latex(expected)
            if not isinstance(expected, sympy.Set)
            else (", ".join(sympy.latex(v) for v in expected))
        )
        assert math_equal(q.answer, shown), f"{q.id}: {q.answer} but sympy says {expected}"
        if "word" not in q.tags:  # the question shows the very expression that was solved
            written = q.verify.replace("**", "^").replace("*x", "x").replace(" ", "")
            assert written in q.question.replace(" ", ""), q.id


def test_the_math_set_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_math_dataset.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["legal", "medical"])
def test_the_format_sets_load_and_test_text(name: str) -> None:
    questions = load_dataset(DATASETS / f"{name}.jsonl")
    assert len(questions) >= 5
    assert any("unanswerable" in q.tags for q in questions)
    assert all(q.answer is None and (q.regex or q.contains or q.not_regex) for q in questions)


def test_docs_eval_documents_every_dataset_field() -> None:
    from botkit.eval.dataset import Question

    docs = (ROOT / "docs" / "eval.md").read_text()
    assert all(f"| `{name}` |" in docs for name in Question.model_fields)
