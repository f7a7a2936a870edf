"""Persona files are bounded and reloaded incrementally: a huge or binary file dropped in is a
clear error that never stalls the others, and an edit reparses only the file that changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from botkit.personas import PersonaRegistry, check_directory, shipped_personas_dir
from botkit.testing import TestBot


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), folder)
    return folder


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    huge = folder / "huge.md"
    huge.write_text("---\nname: huge\ndescription: d\n---\n" + "x" * 300_000, encoding="utf-8")
    registry = PersonaRegistry(folder)
    errors = registry.load()
    assert [str(e) for e in errors] == [
        f"{huge}: file is larger than the limit of 256 KB for a persona (hint: a persona is a prompt "
        "template of a few KB: shorten it, or raise [personas] max_file_kb)"
    ]
    assert registry.get("huge") is None and registry.get("general") is not None
    assert check_directory(folder, max_bytes=400_000)[1] == []  # a higher limit accepts it


def test_a_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "blob.md").write_bytes(os.urandom(4096) + b"\xff\xfe")
    registry = PersonaRegistry(folder)
    (error,) = registry.load()
    assert "not valid UTF-8" in str(error)
    assert registry.get("general") is not None


def test_reload_parses_only_the_files_that_changed(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    registry = PersonaRegistry(folder)
    registry.load()
    first = registry.parses
    assert first == len(list(folder.glob("*.md")))
    registry.load()
    assert registry.parses == first  # nothing changed: nothing parsed
    math = folder / "math.md"
    math.write_text(math.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    registry.load()
    assert registry.parses == first + 1
    persona = registry.get("math")
    assert persona is not None and "One more line." in persona.source


async def test_a_huge_persona_dropped_in_while_running_keeps_the_bot_answering(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    async with TestBot(tmp_path, settings={"personas": {"dir": str(folder)}}) as bot:
        (folder / "huge.md").write_bytes(b"---\nname: huge\n---\n" + b"y" * 5_000_000)
        bot.bot.personas.load()
        reply = await bot.ask("What is 6*7?")
        assert bot.bot.personas.get("huge") is None
    assert "The final answer is 42." in reply.text
