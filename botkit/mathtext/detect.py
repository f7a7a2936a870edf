"""Is this question mathematics? A small rule set, measured on a labelled set (docs/math.md).

Used by a persona with ``math: auto`` (the shipped general persona): a question that is
mathematics gets the model card's math directive ("Please reason step by step, and put your final
answer within \\boxed{}.") even when it was asked by @mention, not ``/math``. The cost of each
kind of mistake decides the rules: a missed math question gets a worse answer (no directive), a
false alarm makes an everyday question ("what time is the 3pm meeting") come back as a
step-by-step derivation with a boxed "answer". So every rule needs *mathematics*, not a number:

1. LaTeX (``\\frac``, ``\\sqrt``, ``$x^2$``…), a power (``x^2``), a function call (``sin(x)``,
   ``f(x)``), a factorial (``9!``), ``d/dx``;
2. an expression: two operands joined by ``+ * × ÷ ^ = < >`` or a *spaced* minus
   (``1000 - 357``); an unspaced hyphen is a range, date, score or phone number (``2-4pm``,
   ``3-2``, ``555-0123``), a slash alone a date or score (``4/15``, ``8/10``), unless asked as
   "what is 2/3 …" or "what is 9-4?";
3. a mathematical word: a verb (solve, simplify, integrate, differentiate, factor, expand,
   evaluate, calculate, compute, prove) or a term (equation, derivative, prime number, square
   root, probability, mean of, area of, divided by, % of, …), including the Chinese ones the
   model card's directive comes in (方程, 求解, 计算 …);
4. a word problem: "how many / how much / how old …" with a number, or a sentence starting
   with "If" that holds two numbers.

The rules are plain regular expressions, so they are fast (every @mention runs them) and each
decision can be explained (:func:`explain`). sympy parsing was measured as an alternative and
rejected: see docs/math.md.
"""

from __future__ import annotations

import re
from typing import Protocol

_NUMBER = r"\d+(?:[.,]\d+)?"
_OPERAND = rf"(?:{_NUMBER}[a-z]?|\b[a-z]|\))(?![\w])"


class _Searcher(Protocol):
    """What a rule needs: ``search`` answering something truthy when the rule fires."""

    def search(self, string: str, /) -> object: ...


class _WordProblem:
    """The word-problem rule: "how many / much / old / far / fast" and a digit on one line.

    The regular expression this replaces, ``\\bhow (…)\\b.*\\d|\\d.*\\bhow (…)\\b``, backtracks
    from every digit to the end of the line and back, which is quadratic in the message's length
    (milliseconds for a 200-word question, and every @mention runs it). Its decision is the same
    as "some line holds the phrase and a digit": ``.`` stops only at ``\\n`` and the phrase holds
    no digit, so any digit on that line is before or after it. Linear in the length.
    """

    _PHRASE = re.compile(r"\bhow (?:many|much|old|far|fast)\b", re.IGNORECASE)
    _DIGIT = re.compile(r"\d")

    def search(self, string: str, /) -> bool:
        if not self._PHRASE.search(string) or not self._DIGIT.search(string):
            return False
        return any(self._PHRASE.search(line) and self._DIGIT.search(line) for line in string.split("\n"))


_RULES: tuple[tuple[str, _Searcher], ...] = (
    (
        "latex",
        re.compile(
            r"\\(?:frac|dfrac|sqrt|int|sum|prod|lim|boxed|cdot|times|pi|theta|alpha|infty)\b|\$[^$]*[\\^][^$]*\$"
        ),
    ),
    ("power", re.compile(r"(?:\w|\))\s*\^\s*[\w({-]|\*\*\s*\d")),
    (
        "function",
        re.compile(
            r"\b(?:sin|cos|tan|log|ln|exp|sqrt|[fgh])\s*\(\s*[\w.π/°-]+\s*\)|\b[dD]/d[a-z]\b|\bd[a-z]/d[a-z]\b"
        ),
    ),
    ("factorial", re.compile(r"\d!(?!\w)")),
    (
        "expression",
        re.compile(
            rf"{_OPERAND}\s*(?:[+*×÷=<>≤≥]|\s-\s)\s*(?:{_NUMBER}|\b[a-z]\b|\(|-\s*\d|\|)", re.IGNORECASE
        ),
    ),
    ("fraction asked", re.compile(rf"\bwhat(?:'s| is)\s+-?{_NUMBER}\s*/\s*{_NUMBER}\b", re.IGNORECASE)),
    ("difference asked", re.compile(rf"\bwhat(?:'s| is)\s+-?{_NUMBER}-{_NUMBER}\s*\??\s*$", re.IGNORECASE)),
    (
        "verb",
        re.compile(
            r"\b(?:solve|simplify|simplified|integrate|differentiate|factor(?:i[sz]e)?|expand|evaluate|"
            r"calculate|compute|prove that)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "term",
        re.compile(
            r"\b(?:equations?|inequality|quadratic|polynomial|derivative|integral|antiderivative|"
            r"prime (?:number|factors?)|square root|cube root|squared|cubed|to the power|power of|"
            r"divisible by|divided by|multiplied by|times\s+\d|plus\s+\d|minus\s+\d|"
            r"remainder|gcd|lcm|greatest common|least common multiple|factorial|"
            r"fraction|decimal|percentage|probability|mean of|median of|mode of|average of|"
            r"standard deviation|variance of|sum of|product of|area of|perimeter of|volume of|"
            r"circumference|hypotenuse|radians|diagonals|determinant|eigen\w*|matrix|"
            r"sequence|series|logarithm|log base|limit of|slope|vertex of|domain of|"
            r"binary|hexadecimal|decimal places|mod\s+\d|choose\s+\d|equal to\s+\d)\b",
            re.IGNORECASE,
        ),
    ),
    ("chinese term", re.compile(r"方程|求解|计算|化简|积分|导数|因式分解|等于多少|多少")),
    ("percent of", re.compile(rf"{_NUMBER}\s*%\s*(?:of|for|off|increase)", re.IGNORECASE)),
    ("word problem", _WordProblem()),
    ("if with numbers", re.compile(r"^\s*if\b[^.?!]*\d[^.?!]*\d", re.IGNORECASE)),
)


def explain(question: str) -> str | None:
    """The name of the first rule that finds mathematics in ``question``, or None."""
    for name, pattern in _RULES:
        if pattern.search(question):
            return name
    return None


def is_math(question: str) -> bool:
    """Whether ``question`` is mathematics (see the module docstring for what that means)."""
    return explain(question) is not None
