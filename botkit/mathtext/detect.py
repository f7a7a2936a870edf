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


#: The four non-ASCII letters that an IGNORECASE pattern's ASCII letters also match (Python's
#: ``re`` docs), folded before a guard reads the words, so that no guard misses what its pattern finds.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_WORD = re.compile(r"[a-z]+")


def _words(question: str) -> frozenset[str]:
    """The question's runs of ASCII letters, lower-cased (after :data:`_FOLD`)."""
    return frozenset(_WORD.findall(question.translate(_FOLD).lower()))


class _Guarded:
    """A rule's pattern behind a cheap test of something every match needs: one of ``chars`` in
    the question, or one of ``words`` (a word starting with one of ``prefixes``) among its
    words. Why: every @mention of a ``math: auto`` persona runs every rule, and a long
    alternation tried at every position of a long question costs hundreds of microseconds
    (0.87 ms for a 900-character question in all, 7 % of a reply's CPU at 500 streams,
    docs/benchmarks.md); most questions hold none of what the expensive rules need. A guard
    only ever skips a pattern that could not match (tests/test_math.py checks the decisions
    are the patterns' own), so the rules stay the regular expressions above."""

    def __init__(
        self,
        pattern: re.Pattern[str],
        *,
        chars: str = "",
        words: frozenset[str] = frozenset(),
        prefixes: tuple[str, ...] = (),
    ) -> None:
        self.pattern = pattern
        self._chars = chars
        self._needed = words
        self._prefixes = prefixes

    def may_match(self, question: str, words: frozenset[str] | None) -> bool:
        if self._chars and any(c in question for c in self._chars):
            return True
        if not (self._needed or self._prefixes):
            return False
        words = _words(question) if words is None else words
        return not self._needed.isdisjoint(words) or any(w.startswith(self._prefixes) for w in words)

    def search(self, string: str, /, words: frozenset[str] | None = None) -> object:
        return self.may_match(string, words) and self.pattern.search(string)


_RULES: tuple[tuple[str, _Searcher], ...] = (
    (
        "latex",
        _Guarded(
            re.compile(
                r"\\(?:frac|dfrac|sqrt|int|sum|prod|lim|boxed|cdot|times|pi|theta|alpha|infty)\b|\$[^$]*[\\^][^$]*\$"
            ),
            chars="\\$",
        ),
    ),
    ("power", _Guarded(re.compile(r"(?:\w|\))\s*\^\s*[\w({-]|\*\*\s*\d"), chars="^*")),
    (
        "function",
        _Guarded(
            re.compile(
                r"\b(?:sin|cos|tan|log|ln|exp|sqrt|[fgh])\s*\(\s*[\w.π/°-]+\s*\)|\b[dD]/d[a-z]\b|\bd[a-z]/d[a-z]\b"
            ),
            chars="(/",
        ),
    ),
    ("factorial", _Guarded(re.compile(r"\d!(?!\w)"), chars="!")),
    (
        "expression",
        _Guarded(
            re.compile(
                rf"{_OPERAND}\s*(?:[+*×÷=<>≤≥]|\s-\s)\s*(?:{_NUMBER}|\b[a-z]\b|\(|-\s*\d|\|)", re.IGNORECASE
            ),
            chars="+*×÷=<>≤≥-",
        ),
    ),
    (
        "fraction asked",
        _Guarded(re.compile(rf"\bwhat(?:'s| is)\s+-?{_NUMBER}\s*/\s*{_NUMBER}\b", re.IGNORECASE), chars="/"),
    ),
    (
        "difference asked",
        _Guarded(
            re.compile(rf"\bwhat(?:'s| is)\s+-?{_NUMBER}-{_NUMBER}\s*\??\s*$", re.IGNORECASE), chars="-"
        ),
    ),
    (
        "verb",
        _Guarded(
            re.compile(
                r"\b(?:solve|simplify|simplified|integrate|differentiate|factor(?:i[sz]e)?|expand|evaluate|"
                r"calculate|compute|prove that)\b",
                re.IGNORECASE,
            ),
            words=frozenset(
                [
                    "solve",
                    "simplify",
                    "simplified",
                    "integrate",
                    "differentiate",
                    "factor",
                    "factorise",
                    "factorize",
                    "expand",
                    "evaluate",
                    "calculate",
                    "compute",
                    "prove",
                ]
            ),
        ),
    ),
    (
        "term",
        _Guarded(
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
            # each alternative's rarest word (the multi-word ones need every word)
            words=frozenset(
                [
                    "equation",
                    "equations",
                    "inequality",
                    "quadratic",
                    "polynomial",
                    "derivative",
                    "integral",
                    "antiderivative",
                    "prime",
                    "root",
                    "squared",
                    "cubed",
                    "power",
                    "divisible",
                    "divided",
                    "multiplied",
                    "times",
                    "plus",
                    "minus",
                    "remainder",
                    "gcd",
                    "lcm",
                    "greatest",
                    "multiple",
                    "factorial",
                    "fraction",
                    "decimal",
                    "percentage",
                    "probability",
                    "mean",
                    "median",
                    "mode",
                    "average",
                    "deviation",
                    "variance",
                    "sum",
                    "product",
                    "area",
                    "perimeter",
                    "volume",
                    "circumference",
                    "hypotenuse",
                    "radians",
                    "diagonals",
                    "determinant",
                    "matrix",
                    "sequence",
                    "series",
                    "logarithm",
                    "log",
                    "limit",
                    "slope",
                    "vertex",
                    "domain",
                    "binary",
                    "hexadecimal",
                    "mod",
                    "choose",
                    "equal",
                ]
            ),
            prefixes=("eigen",),
        ),
    ),
    ("chinese term", re.compile(r"方程|求解|计算|化简|积分|导数|因式分解|等于多少|多少")),
    (
        "percent of",
        _Guarded(re.compile(rf"{_NUMBER}\s*%\s*(?:of|for|off|increase)", re.IGNORECASE), chars="%"),
    ),
    ("word problem", _WordProblem()),
    ("if with numbers", re.compile(r"^\s*if\b[^.?!]*\d[^.?!]*\d", re.IGNORECASE)),
)


def explain(question: str) -> str | None:
    """The name of the first rule that finds mathematics in ``question``, or None."""
    words: frozenset[str] | None = None
    for name, rule in _RULES:
        if isinstance(rule, _Guarded):
            if words is None and (rule._needed or rule._prefixes):
                words = _words(question)
            if rule.search(question, words):
                return name
        elif rule.search(question):
            return name
    return None


def is_math(question: str) -> bool:
    """Whether ``question`` is mathematics (see the module docstring for what that means)."""
    return explain(question) is not None
