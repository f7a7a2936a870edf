"""Split a persona file into front matter and body, and validate the front matter.

Every error is reported against the line numbers of the *file*: YAML marks are relative to the
block after the opening ``---`` and pydantic reports key paths, so both are translated here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import PersonaError
from .model import NOTICE_HINT, Access, FrontMatter, Notice

FENCE = "---"
#: File line of the YAML block's first line (the line after the opening fence).
_YAML_FIRST_LINE = 2

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class SplitFile:
    """A persona file cut at its fences.

    ``body_offset`` is the file line of the closing fence, so template line ``n`` is file line
    ``body_offset + n``.
    """

    front_matter: str
    body: str
    body_offset: int


def split_front_matter(path: Path, text: str) -> SplitFile:
    """Cut ``text`` (newlines already normalised to ``\\n``) at the two ``---`` fences."""
    lines = text.split("\n")
    hint = "start the file with a '---' line, the settings (name, description, ...), then '---'"
    if lines[0].rstrip() != FENCE:
        raise PersonaError(path, 1, "missing front matter: the first line must be '---'", hint)
    for index in range(1, len(lines)):
        if lines[index].rstrip() == FENCE:
            return SplitFile(
                front_matter="\n".join(lines[1:index]) + "\n",
                body="\n".join(lines[index + 1 :]),
                body_offset=index + 1,
            )
    raise PersonaError(path, 1, "unterminated front matter: no closing '---' line", hint)


def parse_front_matter(path: Path, source: str) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Parse the YAML block; return the mapping and the file line of every key and list item."""
    loader = yaml.SafeLoader(source)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PersonaError(path, 1, "front matter is empty", "add at least 'name:' and 'description:'")
        lines: dict[KeyPath, int] = {}
        _collect_lines(path, node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + _YAML_FIRST_LINE if mark is not None else 1
        problem = exc.problem or exc.context or "cannot parse"
        raise PersonaError(
            path, line, f"malformed YAML: {problem}", "write one 'key: value' per line"
        ) from exc
    except yaml.YAMLError as exc:
        raise PersonaError(path, 1, f"malformed YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise PersonaError(
            path, _YAML_FIRST_LINE, "front matter must be a set of 'key: value' lines", "e.g. 'name: math'"
        )
    return data, lines


def _collect_lines(path: Path, node: yaml.Node, prefix: KeyPath, out: dict[KeyPath, int]) -> None:
    """Record where each key sits, rejecting duplicate keys (PyYAML silently keeps the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + _YAML_FIRST_LINE
            if key in seen:
                raise PersonaError(
                    path, line, f"duplicate key {key!r} (first set on line {seen[key]})", "keep only one"
                )
            seen[key] = line
            out[(*prefix, key)] = line
            _collect_lines(path, value_node, (*prefix, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*prefix, index)] = item.start_mark.line + _YAML_FIRST_LINE
            _collect_lines(path, item, (*prefix, index), out)


def validate_front_matter(path: Path, data: dict[str, Any], lines: dict[KeyPath, int]) -> FrontMatter:
    """Validate against :class:`FrontMatter`; report the topmost problem at its line."""
    try:
        front = FrontMatter.model_validate(data)
    except ValidationError as exc:
        located = [(_line_of(tuple(err["loc"]), lines), err) for err in exc.errors()]
        line, err = min(located, key=lambda item: item[0])
        problem, hint = _describe(err)
        raise PersonaError(path, line, problem, hint) from None
    if front.name != path.stem:
        raise PersonaError(
            path,
            lines.get(("name",), 1),
            f"name {front.name!r} does not match the file name {path.name!r}",
            f"set 'name: {path.stem}' or rename the file to '{front.name}.md'",
        )
    return front


def _line_of(loc: KeyPath, lines: dict[KeyPath, int]) -> int:
    """The line of the longest known prefix of a pydantic error location (1 if none)."""
    for end in range(len(loc), 0, -1):
        key = tuple(str(part) if isinstance(part, str) else part for part in loc[:end])
        if key in lines:
            return lines[key]
    return 1


def _allowed_keys(loc: KeyPath) -> list[str]:
    sections: dict[str | int, type[Access] | type[Notice]] = {"access": Access, "notice": Notice}
    model = sections.get(loc[0], FrontMatter) if len(loc) > 1 else FrontMatter
    return list(model.model_fields)


def _describe(err: Any) -> tuple[str, str | None]:
    """Turn one pydantic error into admin-facing words."""
    loc: KeyPath = tuple(err["loc"])
    dotted = ".".join(str(part) for part in loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {dotted!r}", f"{hint}allowed keys: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"missing required key {dotted!r}", f"add '{dotted}: ...' to the front matter"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"invalid value for {dotted!r} ({err['input']!r}): {message}", _value_hint(loc)


def _value_hint(loc: KeyPath) -> str | None:
    """How to write the value of a section admins often get wrong."""
    if loc[:1] == ("access",) and len(loc) == 2:
        return "write a list, e.g. [legal]"
    if loc[:1] == ("notice",):
        return NOTICE_HINT
    return None
