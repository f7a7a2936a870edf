"""Generate ``datasets/math.jsonl``: school mathematics whose answers sympy has verified.

Five kinds, from a fixed random seed (the file is reproducible: ``--check`` says whether the
committed file is what this script writes): arithmetic, fractions, linear equations, quadratic
equations with rational roots, and short word problems. Every line carries ``verify``: the SymPy
expression (or the equation in ``x``) that the question asks about. The answer written is what
sympy computes from ``verify``, and the script refuses to write a line where that differs from
the value the question was built around (a bug in a template, not a bad answer, would show up).

    python scripts/make_math_dataset.py            # writes datasets/math.jsonl
    python scripts/make_math_dataset.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import sympy

OUT = Path(__file__).resolve().parent.parent / "datasets" / "math.jsonl"
X = sympy.Symbol("x")


def solve_verify(verify: str) -> sympy.Basic:
    """The value of ``verify`` (an expression), or the set of solutions in x (an equation)."""
    if "=" in verify:
        left, right = verify.split("=")
        solutions = sympy.solve(sympy.Eq(sympy.sympify(left), sympy.sympify(right)), X)
        return sympy.FiniteSet(*solutions) if len(solutions) > 1 else solutions[0]
    return sympy.nsimplify(sympy.sympify(verify, rational=True))


def same_value(a: sympy.Basic, b: sympy.Basic) -> bool:
    """Equal as numbers or as sets of numbers (exact: these are rationals)."""
    if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
        return bool(a == b)
    return bool(sympy.simplify(a - b) == 0)


def latex_answer(value: sympy.Basic) -> str:
    if isinstance(value, sympy.FiniteSet):
        return "\\{" + ", ".join(sympy.latex(v) for v in sorted(value, key=float)) + "\\}"
    return sympy.latex(value)


def _arithmetic(rng: random.Random) -> Iterator[tuple[str, str, sympy.Basic]]:
    for _ in range(30):
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 30)
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        expr = f"{a} {op1} {b} {op2} {c}"
        yield f"What is {expr}?", expr, sympy.sympify(expr)


def _fractions(rng: random.Random) -> Iterator[tuple[str, str, sympy.Basic]]:
    for _ in range(25):
        a, b = rng.randint(1, 9), rng.randint(2, 12)
        c, d = rng.randint(1, 9), rng.randint(2, 12)
        op = rng.choice("+-*")
        expr = f"{a}/{b} {op} {c}/{d}"
        value = sympy.Rational(a, b)
        other = sympy.Rational(c, d)
        value = value + other if op == "+" else value - other if op == "-" else value * other
        yield f"What is {expr}? Give the answer as a fraction in lowest terms.", expr, value


def _linear(rng: random.Random) -> Iterator[tuple[str, str, sympy.Basic]]:
    for _ in range(20):
        a, root, b = rng.randint(2, 12), rng.randint(-15, 15), rng.randint(-20, 20)
        c = a * root + b
        left = f"{a}*x {'+' if b >= 0 else '-'} {abs(b)}"
        yield f"Solve for x: {left.replace('*', '')} = {c}.", f"{left} = {c}", sympy.Integer(root)


def _quadratic(rng: random.Random) -> Iterator[tuple[str, str, sympy.Basic]]:
    for _ in range(15):
        r, s = rng.randint(-9, 9), rng.randint(-9, 9)
        while s == r:
            s = rng.randint(-9, 9)
        b, c = -(r + s), r * s
        poly = (
            "x**2"
            + (f" {'+' if b >= 0 else '-'} {abs(b)}*x" if b else "")
            + (f" {'+' if c >= 0 else '-'} {abs(c)}" if c else "")
        )
        shown = poly.replace("**", "^").replace("*", "")
        yield f"Solve {shown} = 0. Give all real solutions.", f"{poly} = 0", sympy.FiniteSet(r, s)


Made = tuple[str, str, sympy.Basic]  # (question, verify, the value it was built around)


def _change(g: random.Random) -> Made:
    n, p, pay = g.randint(2, 9), g.randint(1, 5), 50
    question = (
        f"A pencil costs {p} dollars. Maya buys {n} pencils and pays with a {pay} dollar note. "
        "How many dollars of change does she get?"
    )
    return question, f"{pay} - {n}*{p}", sympy.Integer(pay - n * p)


def _distance(g: random.Random) -> Made:
    speed, hours = g.randint(40, 120), g.randint(2, 6)
    question = (
        f"A train travels at a constant {speed} kilometres per hour for {hours} hours. "
        "How many kilometres does it travel?"
    )
    return question, f"{speed}*{hours}", sympy.Integer(speed * hours)


def _apples(g: random.Random) -> Made:
    boxes, each, eaten = g.randint(3, 9), g.randint(4, 12), g.randint(1, 10)
    question = (
        f"There are {boxes} boxes with {each} apples in each box. {eaten} apples are eaten. "
        "How many apples are left?"
    )
    return question, f"{boxes}*{each} - {eaten}", sympy.Integer(boxes * each - eaten)


def _rope(g: random.Random) -> Made:
    total, parts = g.randint(10, 60), g.randint(2, 8)
    question = (
        f"A rope {total} metres long is cut into {parts} equal pieces. How long is each piece, in metres?"
    )
    return question, f"{total}/{parts}", sympy.Rational(total, parts)


def _ages(g: random.Random) -> Made:
    older, diff = g.randint(12, 40), g.randint(1, 10)
    question = (
        f"Sam is {older} years old and his sister is {diff} years younger. What is the sum of their ages?"
    )
    return question, f"{older} + ({older} - {diff})", sympy.Integer(2 * older - diff)


_WORD: list[Callable[[random.Random], Made]] = [_change, _distance, _apples, _rope, _ages]


def _word(rng: random.Random) -> Iterator[tuple[str, str, sympy.Basic]]:
    for index in range(15):
        yield _WORD[index % len(_WORD)](rng)


KINDS = {
    "arithmetic": _arithmetic,
    "fractions": _fractions,
    "linear": _linear,
    "quadratic": _quadratic,
    "word": _word,
}


def generate(seed: int = 20240601) -> list[dict[str, object]]:
    rng = random.Random(seed)
    lines: list[dict[str, object]] = []
    for kind, make in KINDS.items():
        for number, (question, verify, intended) in enumerate(make(rng), 1):
            value = solve_verify(verify)
            if not same_value(value, intended):
                raise SystemExit(
                    f"{kind} {number}: sympy says {value} for {verify!r}, the template meant {intended}"
                )
            lines.append(
                {
                    "id": f"{kind}-{number:03d}",
                    "question": question,
                    "answer": latex_answer(value),
                    "verify": verify,
                    "tags": [kind],
                }
            )
    return lines


def render(lines: list[dict[str, object]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'differs from what the script writes'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} questions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
