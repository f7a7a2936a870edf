"""LaTeX in a chat answer turned into readable Unicode: ``\\frac{a}{b}`` -> ``a/b``, ``x^2`` -> ``x²``,
``\\sqrt{2}`` -> ``√2``.

Rules, in the order they apply:

- Only *math* is converted: ``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]`` and a bare ``\\boxed{…}``.
  The Markdown around it is left as written (pylatexenc run over a whole answer would eat ``_``,
  ``~`` and ``%``), and so are code spans and fenced code blocks: code is shown as code.
- A segment still open (its closing ``$`` not streamed yet) is left raw; the next edit, with the
  segment complete, shows it converted. So every partial view is safe to show.
- pylatexenc's :class:`~pylatexenc.latex2text.LatexNodes2Text` does the conversion, with a few
  macros of our own where its defaults lose meaning: a fraction keeps its grouping
  (``\\frac{x+1}{2}`` -> ``(x+1)/2``, not ``x+1/2``), ``\\dfrac12`` is ``1/2``, a root of one token has
  no parentheses. Super- and subscripts become Unicode super/subscript characters where every
  character has one (``x^{10}`` -> ``x¹⁰``); otherwise they keep a visible, grouped ``^(…)``.
- Display math (``$$…$$``, ``\\[…\\]``) stays on a line of its own.

This is for what users *see*: the stored answer is the model's raw text (see docs/math.md).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db
from pylatexenc.latexwalker import LatexWalker
from pylatexenc.latexwalker import get_default_latex_context_db as walker_context_db
from pylatexenc.macrospec import MacroSpec

log = logging.getLogger("botkit.mathtext.unicode")

_SUPERSCRIPTS = dict(zip("0123456789+-=()nixyabcdkmT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˣʸᵃᵇᶜᵈᵏᵐᵀ", strict=True))
_SUBSCRIPTS = dict(zip("0123456789+-=()aeijknmoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢⱼₖₙₘₒₚᵣₛₜᵤᵥₓ", strict=True))

#: Math segments: display first (``$$`` before ``$``); a ``$`` followed by a digit and a space
#: ("costs $5 and $10") is money, not math, in most answers, so inline ``$`` math must not start
#: or end with a space.
_MATH = re.compile(
    r"\$\$(?P<d1>.+?)\$\$"
    r"|\\\[(?P<d2>.+?)\\\]"
    r"|\\\((?P<i1>.+?)\\\)"
    r"|(?<![\\$])\$(?!\s)(?P<i2>[^$\n]+?)(?<![\s\\])\$(?!\d)",
    re.DOTALL,
)
#: Operator names shown as words (``\\gcd(a, b)`` -> ``gcd(a, b)``), not dropped.
_OPERATORS = ("sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "lim", "gcd", "deg", "det")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_BARE_BOXED = "\\boxed{"


def _group(text: str) -> str:
    """``text`` as one operand: parenthesised unless it is a single token."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?|[^\W\d_]+|.|\([^()]*\)|√\S+", text):
        return text
    return f"({text})"


def _frac(node: Any, l2tobj: LatexNodes2Text) -> str:
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    if len(args) < 2 or args[0] is None or args[1] is None:
        return "/"
    numerator = l2tobj.nodelist_to_text([args[0]])
    denominator = l2tobj.nodelist_to_text([args[1]])
    return f"{_group(numerator)}/{_group(denominator)}"


def _sqrt(node: Any, l2tobj: LatexNodes2Text) -> str:
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    index = l2tobj.nodelist_to_text([args[0]]).strip() if args and args[0] is not None else ""
    body = l2tobj.nodelist_to_text([args[-1]]) if args and args[-1] is not None else ""
    root = {"": "√", "2": "√", "3": "∛", "4": "∜"}.get(index, f"{index}√")
    return root + _group(body)


def _binom(node: Any, l2tobj: LatexNodes2Text) -> str:
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    n, k = (l2tobj.nodelist_to_text([a]).strip() if a is not None else "" for a in [*args, None, None][:2])
    return f"C({n}, {k})"


def _arg_text(node: Any, l2tobj: LatexNodes2Text) -> str:
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    return l2tobj.nodelist_to_text([args[-1]]).strip() if args and args[-1] is not None else ""


def _overline(node: Any, l2tobj: LatexNodes2Text) -> str:
    """A bar over each character (U+0305): ``0.\\overline{3}`` is 0.3̅ (0.333…), not 0.3."""
    return "".join(ch + "\u0305" for ch in _arg_text(node, l2tobj))


def _pmod(node: Any, l2tobj: LatexNodes2Text) -> str:
    return f" (mod {_arg_text(node, l2tobj)})"


@lru_cache(maxsize=1)
def _contexts() -> tuple[Any, LatexNodes2Text]:
    walker_db = walker_context_db()
    walker_db.add_context_category(
        "botkit-math",
        macros=[
            *(MacroSpec(name, "{{") for name in ("frac", "dfrac", "tfrac", "cfrac", "binom")),
            *(MacroSpec(name, "{") for name in ("overline", "pmod")),
        ],
        prepend=True,
    )
    text_db = get_default_latex_context_db()
    text_db.add_context_category(
        "botkit-math",
        macros=[
            *(MacroTextSpec(name, simplify_repl=_frac) for name in ("frac", "dfrac", "tfrac", "cfrac")),
            MacroTextSpec("sqrt", simplify_repl=_sqrt),
            MacroTextSpec("binom", simplify_repl=_binom),
            MacroTextSpec("overline", simplify_repl=_overline),
            MacroTextSpec("pmod", simplify_repl=_pmod),
            MacroTextSpec("cdot", "·"),
            MacroTextSpec("times", "×"),
            MacroTextSpec("div", "÷"),
            MacroTextSpec("pm", "±"),
            MacroTextSpec("mp", "∓"),
            MacroTextSpec("infty", "∞"),
            # pylatexenc knows \neq, \lnot, \wedge...; these spellings it drops, and the
            # formula would then say something else ("x \ne 2" shown as "x 2").
            MacroTextSpec("ne", "≠"),
            MacroTextSpec("neg", "¬"),
            MacroTextSpec("lt", "<"),
            MacroTextSpec("gt", ">"),
            MacroTextSpec("land", "∧"),
            MacroTextSpec("lor", "∨"),
            MacroTextSpec("implies", " ⟹ "),
            MacroTextSpec("impliedby", " ⟸ "),
            MacroTextSpec("iff", " ⟺ "),
            MacroTextSpec("degree", "°"),
            MacroTextSpec("bmod", " mod "),
            MacroTextSpec("triangle", "△"),
            MacroTextSpec("bot", "⊥"),
            MacroTextSpec("|", "‖"),
            MacroTextSpec("colon", ":"),
            MacroTextSpec("quad", " "),
            MacroTextSpec("qquad", "  "),
            MacroTextSpec("left", ""),
            *(MacroTextSpec(name, name + " ") for name in _OPERATORS),
            MacroTextSpec("right", ""),
        ],
        prepend=True,
    )
    return walker_db, LatexNodes2Text(latex_context=text_db, math_mode="text", strict_latex_spaces=False)


def _prepare(latex: str) -> str:
    """``^{…}``/``_{…}`` (or one character) as Unicode scripts where every character has one,
    else grouped as ``^(…)`` so pylatexenc's brace removal cannot change the meaning."""

    def replace(match: re.Match[str]) -> str:
        mark, body = match.group(1), match.group(2) if match.group(2) is not None else match.group(3)
        table = _SUPERSCRIPTS if mark == "^" else _SUBSCRIPTS
        if body and all(ch in table for ch in body):
            return "".join(table[ch] for ch in body)
        if match.group(3) is not None:
            return mark + body
        return f"{mark}({body})" if len(body) > 1 else mark + body

    latex = re.sub(r"(\d)\s*(?=\\[dtc]?frac\b)", r"\1 ", latex)  # a mixed number: 2 1/2, not 21/2
    # A script right after a macro (``\sum_{i=1}``, ``\prod_k``) becomes Unicode letters (ᵢ, ₖ are
    # letters to the parser), which would extend the macro's name and drop it: ``\sumᵢ₌₁``.
    latex = re.sub(r"(\\[A-Za-z]+)(?=[\^_])", r"\1 ", latex)
    latex = re.sub(r"\^\s*(?:\{\s*\\circ\s*\}|\\circ\b)", "°", latex)  # 90^\circ: 90°
    # Innermost groups first, so ``e^{x^2}`` converts its inner script before the outer one.
    previous = None
    while previous != latex:
        previous = latex
        latex = re.sub(r"([\^_])(?:\{([^{}]*)\}|([A-Za-z0-9]))", replace, latex)
    return latex


@lru_cache(maxsize=2048)
def latex_to_unicode(latex: str) -> str:
    """One formula (without its ``$`` delimiters) as Unicode text; the formula itself, unchanged,
    if pylatexenc cannot make sense of it (never an error in a user's reply).

    Cached: a streaming answer is rendered whole on every edit, so its complete formulas are
    converted once, not once per edit (a few ms each in pylatexenc)."""
    walker_db, l2t = _contexts()
    try:
        nodes, _, _ = LatexWalker(
            _prepare(latex), latex_context=walker_db, tolerant_parsing=True
        ).get_latex_nodes()
        text = l2t.nodelist_to_text(nodes)
    except Exception:  # pylatexenc raises several types on malformed input
        log.debug("could not convert %r to Unicode; shown as written", latex, exc_info=True)
        return latex
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ?([=<>≤≥≠≡≈±×÷·→∈]) ?", r" \1 ", text)  # even spacing around relations
    return text.strip()


def _bare_boxed(text: str) -> str:
    """A ``\\boxed{…}`` outside any math delimiters: its value, converted."""
    out, start = [], 0
    while (index := text.find(_BARE_BOXED, start)) != -1:
        depth, end = 0, -1
        for position in range(index + len(_BARE_BOXED) - 1, len(text)):
            if text[position] == "{":
                depth += 1
            elif text[position] == "}":
                depth -= 1
                if depth == 0:
                    end = position
                    break
        if end == -1:  # still streaming: leave the rest as it is
            break
        out.append(text[start:index])
        out.append(latex_to_unicode(text[index + len(_BARE_BOXED) : end]))
        start = end + 1
    out.append(text[start:])
    return "".join(out)


def _convert_prose(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        display = match.group("d1") or match.group("d2")
        formula = latex_to_unicode(display or match.group("i1") or match.group("i2") or "")
        if display is not None:
            return f"\n{formula}\n"
        return formula

    converted = _bare_boxed(_MATH.sub(replace, text))
    return re.sub(r"\n{3,}", "\n\n", converted)


def render_unicode(markdown: str, *, partial: bool = False) -> str:
    """``markdown`` with every complete math segment outside code turned into Unicode text.

    ``partial`` (a streaming view): a formula at the end whose closing delimiter has not arrived
    yet is held back (shown as ``…``) rather than shown as raw LaTeX; the next view has it whole.
    """
    if "$" not in markdown and "\\" not in markdown:
        return markdown
    out, start = [], 0
    for code in _CODE.finditer(markdown):
        out.append(_convert_prose(markdown[start : code.start()]))
        out.append(code.group(0))
        start = code.end()
    tail = _convert_prose(markdown[start:])
    out.append(_hold_back_unfinished(tail) if partial else tail)
    return "".join(out)


#: Where an unfinished formula starts: a display or ``\(`` opener, a ``\boxed{``, or a ``$``
#: followed by LaTeX (a lone ``$`` before plain text is money: "$5 and up").
_UNFINISHED = re.compile(r"\$\$|\\\[|\\\(|\\boxed\{|(?<![\\$])\$(?=[^$\n]*[\\^_{])")


def _hold_back_unfinished(text: str) -> str:
    match = _UNFINISHED.search(text)
    return text if match is None else text[: match.start()].rstrip() + " …"
