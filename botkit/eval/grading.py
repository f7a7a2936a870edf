"""Grading one run: is the answer right, and is it in the form the persona promises?

Mathematics is compared as mathematics by math-verify (latex2sympy2 + sympy underneath), so
``\\frac{1}{2}``, ``\\dfrac12``, ``0.5`` and ``1/2`` are one answer, ``\\{2, 3\\}`` equals
``3, 2``, ``(1, 2]`` is an interval and ``(x+1)^2`` equals ``x^2+2x+1``. The model's answer is
its last ``\\boxed{}`` value (the model card's convention, and what botkit shows as **Final
answer**); an answer without one is wrong, not guessed at from the text.

The text checks (``contains``, ``regex`` and their negations) read the final text a user sees,
botkit's notices included; ``exact`` reads the model's answer alone. math-verify is imported on
first use: it pulls in sympy, which ``botkit chat`` must not pay for at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botkit.streaming.formatting import extract_boxed

if TYPE_CHECKING:
    from botkit.eval.dataset import Question
    from botkit.personas import Persona

#: The directive that asks for a boxed answer (the persona's template, or a math routing).
BOXED_DIRECTIVE = "\\boxed{}"


@dataclass(frozen=True)
class Grade:
    correct: bool
    extracted: str | None  # the boxed value graded, if the question has a math answer
    failed: list[str] = field(default_factory=list)  # the checks that failed, in words


def math_equal(gold: str, predicted: str) -> bool:
    """Whether two answers (LaTeX or plain) are the same mathematics."""
    from math_verify import parse, verify

    target = parse(f"${predicted}$")
    if not target:
        return False
    return bool(verify(parse(f"${gold}$"), target))


def warm_up() -> None:
    """Import math-verify (and sympy) now: the first import takes a second or two, which would
    otherwise block the event loop during the first graded run and inflate the latencies of
    the runs streaming meanwhile."""
    math_equal("1", "1")


def boxed_value(text: str) -> str | None:
    """The last non-empty ``\\boxed{}`` value (an empty one, e.g. the directive echoed, is none)."""
    value = extract_boxed(text)
    return value or None


def grade(question: Question, answer: str, final: str) -> Grade:
    """Grade ``answer`` (as the model wrote it) and ``final`` (as the user sees it)."""
    failed: list[str] = []
    extracted: str | None = None
    if question.answer is not None:
        extracted = boxed_value(answer)
        if extracted is None:
            failed.append("no \\boxed{} answer")
        elif not math_equal(question.answer, extracted):
            failed.append(f"boxed {extracted!r} is not {question.answer!r}")
    if question.exact is not None and _squash(answer) != _squash(question.exact):
        failed.append(f"answer is not exactly {question.exact!r}")
    lowered = final.casefold()
    failed += [f"does not contain {s!r}" for s in question.contains if s.casefold() not in lowered]
    failed += [f"contains {s!r}" for s in question.not_contains if s.casefold() in lowered]
    failed += [f"does not match /{p}/" for p in question.regex if not re.search(p, final, re.IGNORECASE)]
    failed += [f"matches /{p}/" for p in question.not_regex if re.search(p, final, re.IGNORECASE)]
    return Grade(not failed, extracted, failed)


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class FormatCheck:
    """What the persona promises about the form of every answer; None: it promises nothing."""

    boxed: bool | None
    notice: bool | None

    @property
    def compliant(self) -> bool:
        return self.boxed is not False and self.notice is not False


def check_format(persona: Persona, user_content: str, answer: str, final: str) -> FormatCheck:
    """A ``\\boxed{}`` answer where the persona (or the rendered prompt) asks for one, and the
    persona's after-notice in the final text where it has one."""
    wants_boxed = persona.answer_format == "boxed" or BOXED_DIRECTIVE in user_content
    after = persona.notices.after
    return FormatCheck(
        boxed=(boxed_value(answer) is not None) if wants_boxed else None,
        notice=(after in final) if after else None,
    )
