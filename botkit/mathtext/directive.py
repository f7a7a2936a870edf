"""When a turn is a math turn, and the directive it then gets.

A persona's ``math:`` option decides (``auto`` asks :func:`~botkit.mathtext.detect.is_math`).
A math turn gets the DeepSeek-R1 model card's directive at the end of its user turn (never in a
system message: the model gets none), unless the persona's template already has it (the math
persona says it word for word), so it is never said twice. Its answer is then shown as math:
the boxed value as **Final answer**, formulas as Unicode, display formulas as a PNG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botkit.mathtext.detect import is_math

if TYPE_CHECKING:
    from botkit.personas import Persona

#: The model card's words (design.md); the Chinese form is the seed article's.
MATH_DIRECTIVE = "Please reason step by step, and put your final answer within \\boxed{}."
MATH_DIRECTIVE_ZH = "请逐步推理，并将最终答案放在\\boxed{}内。"


def is_math_turn(persona: Persona, question: str) -> bool:
    """Whether ``question`` asked of ``persona`` is answered as mathematics."""
    if persona.math == "always":
        return True
    return persona.math == "auto" and is_math(question)


def with_directive(user_turn: str) -> str:
    """``user_turn`` ending with the math directive (unchanged if it has it in either language)."""
    if MATH_DIRECTIVE in user_turn or MATH_DIRECTIVE_ZH in user_turn:
        return user_turn
    return f"{user_turn.rstrip()}\n\n{MATH_DIRECTIVE}"
