"""Persona files with notices, shared by the notice tests on the core, Slack and Discord."""

from __future__ import annotations

from pathlib import Path

BEFORE = "_Not advice. In an emergency call your local emergency number._"
AFTER = "_General information only; ask a person about your situation._"


def write_persona(directory: Path, name: str, front: str, body: str = "{{ question }}") -> Path:
    """``directory/name.md`` with ``front`` (YAML lines) after the name and description."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(f"---\nname: {name}\ndescription: test persona\n{front}---\n{body}\n", encoding="utf-8")
    return path


def write_noticed(directory: Path) -> Path:
    """A ``noticed`` persona with both notices (and ``general``, the default, without any)."""
    write_persona(directory, "noticed", f'notice:\n  before: "{BEFORE}"\n  after: "{AFTER}"\n')
    write_persona(directory, "general", "")
    return directory
