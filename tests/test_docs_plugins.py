"""docs/plugins.md's examples work as written: the shortest plugin passes its own test, and the
middleware and filter examples do what the text says."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

from botkit.testing import RecordingReply, TestBot

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _blocks(section: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 3)
    return re.findall(r"```python\n(.*?)```", text[start : end if end != -1 else None], re.S)


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"docs/plugins.md ({name})", "exec"), module.__dict__)
    return module


async def test_the_shortest_plugin_passes_its_documented_test(tmp_path: Path, monkeypatch: Any) -> None:
    plugin_source, test_source = _blocks("The shortest plugin")
    monkeypatch.setitem(sys.modules, "botkit_shout", _module("botkit_shout", plugin_source))
    test_module = _module("test_shout", test_source)
    await test_module.test_shout(tmp_path)


async def test_the_documented_middleware_and_filter(tmp_path: Path) -> None:
    (middleware_source,) = _blocks("Middleware")
    (filter_source,) = _blocks("Text filters")
    module = _module("allow_list_doc", middleware_source + "\n" + filter_source)

    async with TestBot(tmp_path, plugins=[module.plugin]) as bot:
        refused = await bot.ask("hi", user="U0MALLORY", reply=RecordingReply(private_notices=True))
        exams = await bot.ask(
            "2+2",
            user="U0ALICE",
            command="math",
            args={"question": "2+2"},
            reply=RecordingReply(private_notices=True),
        )
        bot.standin.script_reply("Mail bob@example.com.")
        answered = await bot.ask("Who?", user="U0ALICE")
    assert "ask #help-desk" in refused.notices[0]
    assert exams.notices == ["⚠️ Math help is closed during exams."]
    assert answered.text == "Mail [email]."


async def test_the_readme_middleware_and_filter_example(tmp_path: Path) -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    (source,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    module = _module("support_only_doc", source)
    async with TestBot(tmp_path, plugins=[module.plugin]) as bot:
        refused = await bot.ask("hi", user="U0MALLORY", command="math", args={"question": "1+1"})
        answered = await bot.ask("I am carol@example.org: what is 2+2?", user="U0ALICE")
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        stored = await bot.store.messages(conversation)
        assert len(bot.standin.requests) == 1
    assert "ask #help-desk" in refused.text
    assert "The final answer is 4." in answered.text
    assert stored[0].content == "I am [email]: what is 2+2?"
