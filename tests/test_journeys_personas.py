"""Journey: an admin edits persona files (a fresh-eyes audit of what the docs promise).

The size-limit error tells the admin to "raise [personas] max_file_kb"; that key must exist and
do what the hint says, in a running bot and in ``botkit personas check``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.personas import shipped_personas_dir
from botkit.testing import TestBot

BIG = "---\nname: big\ndescription: A long prompt\n---\n{{ question }}\n" + "Context line.\n" * 22_000


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), folder)
    (folder / "big.md").write_text(BIG, encoding="utf-8")  # about 300 KB: over the default 256 KB
    return folder


def _config(tmp_path: Path, folder: Path, extra: str = "") -> Path:
    config = tmp_path / "botkit.toml"
    config.write_text(f'[personas]\ndir = "{folder}"\n{extra}', encoding="utf-8")
    return config


def test_personas_check_names_the_key_that_raises_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    assert main(["--config", str(_config(tmp_path, folder)), "personas", "check"]) == 1
    out = capsys.readouterr().out
    assert f"error {folder / 'big.md'}: file is larger than the limit of 256 KB" in out
    assert "raise [personas] max_file_kb" in out
    # What the hint says to do: the key is accepted and the file now passes.
    assert main(["--config", str(_config(tmp_path, folder, "max_file_kb = 512\n")), "personas", "check"]) == 0
    assert "ok    big.md: big (" in capsys.readouterr().out


async def test_a_running_bot_loads_a_persona_under_the_raised_limit(tmp_path: Path) -> None:
    """Raised, the big file loads and answers; 300 KB of prompt is more than the model's context,
    which the asker is told plainly (a size limit far below that is the admin's own choice)."""
    folder = _folder(tmp_path)
    async with TestBot(tmp_path, settings={"personas": {"dir": str(folder)}}) as bot:
        assert bot.bot.personas.get("big") is None  # the default limit refuses it
    raised = {"dir": str(folder), "max_file_kb": 512, "default": "big"}
    async with TestBot(tmp_path, settings={"personas": raised}) as bot:
        assert bot.bot.personas.get("big") is not None
        reply = await bot.ask("What is 6*7?")
    assert reply.text.startswith("⚠️ Your message is too long for the model")


async def test_a_lowered_limit_refuses_a_file_and_the_previous_version_keeps_serving(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "big.md").unlink()
    async with TestBot(tmp_path, settings={"personas": {"dir": str(folder), "max_file_kb": 4}}) as bot:
        general = folder / "general.md"
        general.write_text(general.read_text(encoding="utf-8") + "Padding.\n" * 600, encoding="utf-8")
        errors = bot.bot.personas.load()
        assert [str(e) for e in errors] == [
            f"{general}: file is larger than the limit of 4 KB for a persona (hint: a persona is a prompt "
            "template of a few KB: shorten it, or raise [personas] max_file_kb)"
        ]
        reply = await bot.ask("What is 6*7?")
    assert "The final answer is 42." in reply.text
    assert "Padding." not in bot.standin.requests[-1]["messages"][-1]["content"]


@pytest.mark.parametrize("make", [False, True], ids=["missing-folder", "empty-folder"])
def test_a_persona_folder_with_nothing_usable_says_which_key_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, make: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mine"
    if make:
        folder.mkdir()
    config = tmp_path / "botkit.toml"
    config.write_text(f'[llm]\nbackend = "standin"\n[personas]\ndir = "{folder}"\n', encoding="utf-8")
    assert main(["--config", str(config), "chat"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    why = "no persona files (*.md) found" if make else f"{folder}: cannot list persona directory"
    assert last.startswith(
        f"botkit: error: no usable persona in {folder} ([personas] dir, BOTKIT_PERSONAS__DIR): {why}"
    )
    assert last.endswith("; run `botkit personas check`")
