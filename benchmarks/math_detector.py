"""Precision and recall of botkit's math detector on the labelled set.

    python benchmarks/math_detector.py [tests/data/math_questions.tsv] [--errors] [--sympy]
    python benchmarks/math_detector.py --long 230      # CPU of explain() on long questions

The set is tab-separated: ``1`` (mathematics) or ``0``, then the question; ``#`` lines are
comments. ``--long WORDS`` instead times :func:`explain` on 200 questions of WORDS words shaped
like ``bench_e2e.py``'s (a rule quadratic in the length shows here, not on the short set); run it
with ``PYTHONPATH=OTHER_CHECKOUT`` to time another version. Otherwise prints the confusion counts, precision, recall and F1, and with ``--errors`` every
misclassified question with the rule that fired. ``--sympy`` measures the alternative that was
considered instead: a question is math if sympy parses a formula-looking run of it into an
expression with an operation. The numbers are in docs/math.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from botkit.mathtext.detect import explain

_RUN = re.compile(r"(?:(?:\d+(?:\.\d+)?[a-z]?|\b[a-z]\b|[+\-*/^=()])\s*){3,}", re.IGNORECASE)


def sympy_rule(question: str) -> str | None:
    """The sympy baseline: "sympy" if a run of formula characters parses to an operation."""
    from sympy import Basic, Eq
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = (*standard_transformations, implicit_multiplication_application)
    for run in _RUN.findall(question):
        if not any(op in run for op in "+-*/^=") or len(run) < 3:
            continue
        text = run.replace("^", "**").strip(" .")
        try:
            if "=" in text and text.count("=") == 1:
                left, right = text.split("=")
                parsed: Basic = Eq(
                    parse_expr(left, transformations=transformations, evaluate=False),
                    parse_expr(right, transformations=transformations, evaluate=False),
                )
            else:
                parsed = parse_expr(text, transformations=transformations, evaluate=False)
        except Exception:  # sympy raises many kinds on prose
            continue
        if isinstance(parsed, Basic) and parsed.args:
            return "sympy"
    return None


DEFAULT_SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "math_questions.tsv"


def load(path: Path) -> list[tuple[bool, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, question = line.partition("\t")
        if not sep or label not in ("0", "1"):
            raise SystemExit(f"{path}:{number}: expected '1<TAB>question' or '0<TAB>question', got {line!r}")
        rows.append((label == "1", question.strip()))
    return rows


def time_long(words: int, count: int = 200) -> int:
    """CPU per :func:`explain` call on ``count`` questions of ``words`` words (bench_e2e's shape)."""
    questions = [
        f"Q{i} please summarise: " + " ".join(f"w{(i + j) % 97}" for j in range(words)) for i in range(count)
    ]
    started = time.process_time()
    for question in questions:
        explain(question)
    per_call_ms = (time.process_time() - started) / count * 1000
    print(f"explain() on {count} questions of {words} words: {per_call_ms:.2f} ms CPU per question")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_SET)
    parser.add_argument("--errors", action="store_true", help="list every misclassified question")
    parser.add_argument("--sympy", action="store_true", help="measure the sympy-parsing baseline instead")
    parser.add_argument("--long", type=int, metavar="WORDS", help="time explain() on long questions instead")
    args = parser.parse_args(argv)
    if args.long:
        return time_long(args.long)
    rows = load(args.dataset)
    tp = fp = fn = tn = 0
    errors: list[str] = []
    started = time.perf_counter()
    for label, question in rows:
        rule = sympy_rule(question) if args.sympy else explain(question)
        predicted = rule is not None
        tp += label and predicted
        fp += predicted and not label
        fn += label and not predicted
        tn += not label and not predicted
        if predicted != label:
            errors.append(f"  {'false positive' if predicted else 'missed'} ({rule or '-'}): {question}")
    per_question_us = (time.perf_counter() - started) / max(len(rows), 1) * 1e6
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"{args.dataset.name}: {len(rows)} questions ({tp + fn} mathematics, {tn + fp} not)")
    print(f"true positives {tp}, false positives {fp}, false negatives {fn}, true negatives {tn}")
    print(
        f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  ({per_question_us:.0f} µs per question)"
    )
    if args.errors and errors:
        print("\n".join(errors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
