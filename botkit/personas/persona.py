"""The loaded, ready-to-render persona handed to the rest of botkit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from botkit.streaming.notices import NO_NOTICES, Notices

from .model import Access, AnswerFormat, MathMode, ReasoningDisplay
from .template import CompiledBody, render_body


@dataclass(frozen=True)
class Persona:
    """An immutable snapshot of one persona file.

    Immutable so a reply in flight keeps the version it started with while the registry swaps in
    an edited one. ``temperature``/``top_p``/``max_tokens`` are ``None`` when the file leaves them to
    the LLM client's defaults (0.6 / 0.95 for DeepSeek-R1).
    """

    name: str
    description: str
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    reasoning_display: ReasoningDisplay
    answer_format: AnswerFormat
    access: Access
    path: Path
    content_hash: str
    source: str = field(repr=False)
    """The template body as written (for ``/persona show``)."""
    _body: CompiledBody = field(repr=False, compare=False)
    _body_offset: int = field(repr=False, compare=False)
    notices: Notices = NO_NOTICES
    """Shown by botkit around every answer (``notice:``), never left to the model."""
    store_reasoning: bool = True
    """``store_reasoning: false``: the turn's reasoning is not stored (NULL), only the answer."""
    math: MathMode = "never"
    """``math:``: when a question gets the math directive and a math answer's display."""

    @property
    def version(self) -> str:
        """``name@hash``: stored with each turn so answers can be traced to the exact file."""
        return f"{self.name}@{self.content_hash}"

    def render(self, question: str, **context: str) -> str:
        """Render the user turn for ``question``.

        ``context`` may hold ``user_name``, ``platform``, ``channel`` and ``today`` (defaults: empty
        strings and today's ISO date) and plugin variables declared at load time; other names are
        ignored. Never put the result in a system message: DeepSeek-R1 must get every instruction
        in the user turn. Raises :class:`PersonaError` if a template branch not exercised at load
        time fails.
        """
        return render_body(self._body, self._body_offset, question, dict(context))
