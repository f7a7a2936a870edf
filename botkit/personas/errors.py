"""The one error type persona files produce.

Persona files are edited by hand by admins, not developers, so every problem must point at the
exact ``file:line`` (the form editors and terminals turn into a jump link) and, where we can tell,
say what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class PersonaError(Exception):
    """A persona file cannot be used, located as precisely as we can manage.

    ``line`` is a 1-based line number in the file itself (not in the YAML block or the template
    body), or ``None`` when the problem concerns the whole file (unreadable, missing directory).
    """

    def __init__(self, path: Path, line: int | None, problem: str, hint: str | None = None) -> None:
        # Passing every argument to Exception keeps the error picklable (e.g. across processes).
        super().__init__(path, line, problem, hint)
        self.path = path
        self.line = line
        self.problem = problem
        self.hint = hint

    @property
    def location(self) -> str:
        """``path:line``, or just ``path`` when no line applies."""
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)

    def __str__(self) -> str:
        text = f"{self.location}: {self.problem}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text
