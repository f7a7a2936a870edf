"""The eval dataset: one JSON object per line (documented in ``docs/eval.md``).

Each line is a question and the checks its answer must pass; a line that is not valid is an
error naming the file, the line and the field, so an admin can fix it, rather than a question
silently skipped (an eval over fewer questions than written would mislead).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

Text = Annotated[str, StringConstraints(min_length=1)]


class DatasetError(ValueError):
    """A dataset that cannot be used; the message gives ``file:line``, the problem and the fix."""


class Question(BaseModel):
    """One dataset line. A run is correct when every check given passes (at least one is)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: Text
    question: Text
    answer: Text | None = None
    """A mathematical answer (LaTeX or plain: ``\\frac12``, ``0.5``, ``\\{2, 3\\}``, ``(1, 2]``),
    compared as mathematics with the answer's last ``\\boxed{}`` value."""
    exact: str | None = None
    """The answer text must equal this (whitespace and case ignored)."""
    regex: list[Text] = Field(default_factory=list)
    """Each pattern must match somewhere in the final text (Python ``re``, case-insensitive)."""
    not_regex: list[Text] = Field(default_factory=list)
    """No pattern may match (e.g. an invented citation: ``\\d+\\s+U\\.S\\.C\\.``)."""
    contains: list[Text] = Field(default_factory=list)
    """Each string must appear in the final text (case-insensitive)."""
    not_contains: list[Text] = Field(default_factory=list)
    """No string may appear in the final text (case-insensitive)."""
    tags: list[Text] = Field(default_factory=list)
    verify: Text | None = None
    """How a generated dataset proves ``answer``: a SymPy expression whose value is the answer,
    or an equation in ``x`` whose solutions are (``scripts/make_math_dataset.py``; a test
    re-checks every shipped line). Not used in grading."""

    @field_validator("regex", "not_regex", "contains", "not_contains", "tags", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("regex", "not_regex")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {err}") from None
        return patterns

    @model_validator(mode="after")
    def _has_a_check(self) -> Question:
        if (
            self.answer is None
            and self.exact is None
            and not (self.regex or self.not_regex or self.contains or self.not_contains)
        ):
            raise ValueError(
                "the question has nothing to check: give 'answer' (mathematics), 'exact', "
                "'regex', 'not_regex', 'contains' or 'not_contains'"
            )
        return self


def load_dataset(path: Path, *, limit: int | None = None) -> list[Question]:
    """Every question of the JSONL file at ``path`` (blank lines and ``//`` comments skipped);
    ``limit``: the first that many. Raises :class:`DatasetError`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the dataset: {err.strerror or err}") from None
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        question = _parse_line(path, number, line)
        if question.id in seen:
            raise DatasetError(
                f"{path}:{number}: id {question.id!r} is already used on line {seen[question.id]}; "
                "give every question its own id"
            )
        seen[question.id] = number
        questions.append(question)
        if limit is not None and len(questions) >= limit:
            break
    if not questions:
        raise DatasetError(f"{path}: no questions (one JSON object per line; see docs/eval.md)")
    return questions


def _parse_line(path: Path, number: int, line: str) -> Question:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}:{number}: not valid JSON ({err.msg}, column {err.colno})") from None
    if not isinstance(data, dict):
        raise DatasetError(
            f'{path}:{number}: each line must be a JSON object, e.g. {{"id": ..., "question": ...}}'
        )
    data.setdefault("id", f"line-{number}")
    try:
        return Question.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {_message(e)}" for e in err.errors()
        )
        raise DatasetError(f"{path}:{number}: {problems}") from None


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (known: " + ", ".join(Question.model_fields) + ")"
    return str(error["msg"]).removeprefix("Value error, ")
