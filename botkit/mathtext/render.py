"""A final math answer's display formulas drawn into one PNG, with matplotlib's mathtext.

mathtext is matplotlib's own TeX-subset parser and renderer: no TeX installation, a pure-Python
dependency, the Agg backend (no display). matplotlib is imported lazily, on the first answer
that has a formula to draw, because importing it costs about a second and most turns never do.

What is drawn: the answer's display formulas (``$$…$$``, ``\\[…\\]``) and its boxed result
(framed, last), one per row, in the order they appear. An answer whose only formula is a boxed
plain value (``\\boxed{391}``) gets no image: the text shows it exactly. A formula mathtext cannot parse (an
environment such as ``aligned``, an unknown macro) is left out of the image, and is still in the
text, as Unicode; if none parses there is no image. Never an error for the user.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from botkit.events import Attachment
from botkit.mathtext.unicode import latex_to_unicode
from botkit.streaming.formatting import extract_boxed

log = logging.getLogger("botkit.mathtext.render")

_DISPLAY = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]", re.DOTALL)
_BOXED_INSIDE = re.compile(r"\\boxed\{")
#: Macros mathtext lacks, written as ones it has (same meaning).
_SPELLINGS = {r"\dfrac": r"\frac", r"\tfrac": r"\frac", r"\left": "", r"\right": "", r"\,": r"\ ", r"\!": ""}
FONT_SIZE = 20
DPI = 150
MAX_FORMULAS = 8  # one image stays readable on a phone


@dataclass(frozen=True)
class Formula:
    latex: str
    boxed: bool = False


def display_formulas(answer: str) -> list[Formula]:
    """The formulas worth an image: display math, then the boxed result (if not one of them)."""
    formulas = [Formula(_unbox(m.group(1) or m.group(2))) for m in _DISPLAY.finditer(answer)]
    formulas = [f for f in formulas if f.latex]
    boxed = extract_boxed(answer)
    if boxed:
        formulas = [f for f in formulas if f.latex != boxed]
        formulas.append(Formula(boxed, boxed=True))
    return formulas[-MAX_FORMULAS:]


def worth_drawing(formula: Formula) -> bool:
    """A display formula always; a boxed result only if it is more than plain text (``391``,
    ``x = 2`` read the same in the text: an image of them is noise in the thread)."""
    return not formula.boxed or any(ch in formula.latex for ch in "\\^_{}")


def _unbox(latex: str) -> str:
    """``\\boxed{x}`` inside a display formula: drawn as its content (the box is the last row)."""
    match = _BOXED_INSIDE.search(latex)
    if match is None:
        return latex.strip()
    depth = 0
    for end in range(match.end() - 1, len(latex)):
        depth += {"{": 1, "}": -1}.get(latex[end], 0)
        if depth == 0:
            return (latex[: match.start()] + latex[match.end() : end] + latex[end + 1 :]).strip()
    return latex.strip()


def _mathtext(latex: str) -> str:
    for macro, spelling in _SPELLINGS.items():
        latex = latex.replace(macro, spelling)
    return "$" + " ".join(latex.split()) + "$"


def parses(latex: str) -> bool:
    """Whether mathtext can draw ``latex`` (one formula, without ``$``)."""
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(_mathtext(latex), dpi=72)
    except (ValueError, RuntimeError):
        return False
    return True


def render_png(drawable: list[Formula]) -> bytes | None:
    """One PNG of ``drawable`` (formulas that :func:`parses`), one per row, or None if empty."""
    if not drawable:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    font = FontProperties(size=FONT_SIZE)
    parser = MathTextParser("path")
    sizes = [parser.parse(_mathtext(f.latex), dpi=72, prop=font) for f in drawable]
    pad = FONT_SIZE * 0.8
    width = max(s.width for s in sizes) + 2 * pad
    height = sum(s.height + pad for s in sizes) + pad
    figure = Figure(figsize=(width / 72, height / 72), facecolor="white")
    FigureCanvasAgg(figure)
    y = height - pad
    for formula, size in zip(drawable, sizes, strict=True):
        y -= size.height
        box = (
            {"boxstyle": "round,pad=0.3", "facecolor": "#fff8dc", "edgecolor": "#444"}
            if formula.boxed
            else None
        )
        figure.text(
            pad / width, (y + size.depth) / height, _mathtext(formula.latex), fontproperties=font, bbox=box
        )
        y -= pad
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, facecolor="white")
    return out.getvalue()


def has_formulas(answer: str) -> bool:
    """Whether ``answer`` has a formula worth an image (cheap: no matplotlib)."""
    return any(worth_drawing(f) for f in display_formulas(answer))


def formula_image(answer: str) -> Attachment | None:
    """The attachment for a final math answer, or None when it has no formula mathtext can draw.

    Its alt text is the drawn formulas as Unicode text (for screen readers; Slack's ``alt_txt``
    and Discord's ``description``). CPU-bound (tens of milliseconds, plus matplotlib's import the
    first time): call it in a thread.
    """
    formulas = display_formulas(answer)
    if not has_formulas(answer):
        return None
    try:
        drawn = [f for f in formulas if parses(f.latex)]
        for skipped in (f for f in formulas if f not in drawn):
            log.info("formula left out of the image (mathtext cannot parse it): %r", skipped.latex)
        data = render_png(drawn)
    except Exception:  # a renderer bug must not turn an answer into an error
        log.exception("could not draw the formulas of an answer; the text shows them")
        return None
    if data is None:
        return None
    alt = "; ".join(("Answer: " if f.boxed else "") + latex_to_unicode(f.latex) for f in drawn)
    return Attachment(
        data=data, filename="formulas.png", mime="image/png", alt_text=("Formulas: " + alt)[:1000]
    )
