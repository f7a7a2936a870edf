"""Compile and render persona bodies in Jinja's sandbox.

Persona bodies are written by admins and rendered for every message, so they run in
:class:`~jinja2.sandbox.SandboxedEnvironment` with :class:`~jinja2.StrictUndefined` (a typo is an
error, not an empty string). The user's text is only ever a variable *value*; it is never compiled,
so ``{{ 7*7 }}`` in a question reaches the model verbatim. Everything that can be checked is checked
once at load time, so an admin's mistake is reported when the file is saved, not when a user asks.
"""

from __future__ import annotations

import datetime
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from .errors import PersonaError

#: Variables a body may use. ``question`` is the user's text; the rest are optional context.
CONTEXT_VARIABLES = frozenset({"user_name", "platform", "channel", "today"})
ALLOWED_VARIABLES = CONTEXT_VARIABLES | {"question"}

_SAMPLE_CONTEXT = {
    "question": "What is 2 + 2?",
    "user_name": "Ada",
    "platform": "console",
    "channel": "general",
    "today": "2025-01-01",
}

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class CompiledBody:
    """A checked template, plus whether it places the question itself."""

    template: Template
    uses_question: bool
    path: Path
    extra_variables: frozenset[str] = frozenset()


def compile_body(
    path: Path, source: str, offset: int, extra_variables: frozenset[str] = frozenset()
) -> CompiledBody:
    """Parse, check and trial-render a body; template line ``n`` is file line ``offset + n``.

    ``extra_variables`` are names plugins promise to supply (``Turn.variables``); a body may use
    them and they render as empty strings when a plugin does not set them.
    """
    filename = str(path)
    try:
        tree = _ENV.parse(source, name=path.name, filename=filename)
        _reject_forbidden(path, tree, offset)
        undeclared = meta.find_undeclared_variables(tree)
        _reject_unknown_variables(path, tree, undeclared - extra_variables, offset)
        code = _ENV.compile(tree, name=path.name, filename=filename)
    except TemplateSyntaxError as exc:
        raise PersonaError(
            path,
            offset + exc.lineno,
            f"template syntax error: {exc.message}",
            "check that every {% if %}/{% for %} is closed and every {{ has a matching }}",
        ) from None
    template = _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))
    compiled = CompiledBody(
        template=template, uses_question="question" in undeclared, path=path, extra_variables=extra_variables
    )
    try:
        template.render({**dict.fromkeys(extra_variables, "sample"), **_SAMPLE_CONTEXT})
    except Exception as exc:  # sandbox and StrictUndefined raise several unrelated types
        line = _template_line(exc, filename)
        raise PersonaError(
            path,
            offset + line if line is not None else None,
            f"template fails when rendered: {type(exc).__name__}: {exc}",
            "templates may only format the question and context variables",
        ) from None
    return compiled


def render_body(body: CompiledBody, offset: int, question: str, context: dict[str, str]) -> str:
    """Render for one message; the question is appended when the body does not place it.

    Context names the body cannot use are ignored: plugins may add variables for other personas.
    """
    values: dict[str, Any] = dict.fromkeys(body.extra_variables, "")
    values.update(user_name="", platform="", channel="", today=datetime.date.today().isoformat())
    values.update(context)
    values["question"] = question
    try:
        text = body.template.render(values).strip()
    except Exception as exc:  # a branch the trial render did not reach
        line = _template_line(exc, str(body.path))
        raise PersonaError(
            body.path,
            offset + line if line is not None else None,
            f"template fails when rendered: {type(exc).__name__}: {exc}",
        ) from exc
    if not body.uses_question:
        text = f"{text}\n\n{question}" if text else question
    return text.strip()


def _reject_forbidden(path: Path, tree: nodes.Template, offset: int) -> None:
    """Refuse what the sandbox would only catch on the branch that runs it."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attribute: object = None
        if isinstance(node, nodes.Getattr):
            attribute = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attribute = node.arg.value
        if isinstance(attribute, str) and attribute.startswith("_"):
            raise PersonaError(
                path,
                offset + node.lineno,
                f"access to {attribute!r} is not allowed in a persona template",
                "templates may only format the question and context variables",
            )
    for statement in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise PersonaError(
            path,
            offset + statement.lineno,
            "a persona template cannot include, import or extend other templates",
            "put all the text in this file",
        )


def _reject_unknown_variables(path: Path, tree: nodes.Template, undeclared: set[str], offset: int) -> None:
    unknown = undeclared - ALLOWED_VARIABLES
    if not unknown:
        return
    uses = [
        (node.lineno, node.name)
        for node in tree.find_all(nodes.Name)
        if node.ctx == "load" and node.name in unknown
    ]
    line, name = min(uses) if uses else (1, sorted(unknown)[0])
    raise PersonaError(
        path,
        offset + line,
        f"undefined variable {name!r}",
        f"available variables: {', '.join(sorted(ALLOWED_VARIABLES))}",
    )


def _template_line(exc: BaseException, filename: str) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's own line numbers."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line
