"""Journey: legal and medical channels bound to personas, with access rules in the configuration.

A persona name in a binding or under ``[access.personas]`` that matches no persona file is a
typo an admin cannot see otherwise: rules under a misspelt name govern nothing (the real persona
answers everyone), and a channel bound to it refuses every question; a misspelt platform
(``slak:``) binds nothing. Start-up says so, naming the key and the nearest name. A persona file deleted while running leaves its channels with a
visible refusal, never a silent answer by another persona.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.config import ConfigError
from botkit.personas import shipped_personas_dir
from botkit.testing import TestBot

LEGAL_ONLY = {"allow": {"roles": ["legal"]}}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"personas": {"bindings": {"test:C0LEGAL": "legl"}}},
            "[personas.bindings] 'test:C0LEGAL' = 'legl': there is no persona 'legl' "
            "(personas: general, legal, math, medical); did you mean 'legal'?",
        ),
        (
            {"access": {"personas": {"medcal": LEGAL_ONLY}}},
            "[access.personas.medcal]: its rules would govern nothing: there is no persona 'medcal' "
            "(personas: general, legal, math, medical); did you mean 'medical'?",
        ),
        (
            {"personas": {"bindings": {"slak:C0LEGAL": "legal"}}},
            "[personas.bindings] 'slak:C0LEGAL': 'slak:C0LEGAL' names the platform 'slak', which no "
            "adapter has; did you mean 'slack'? (adapters: console, discord, slack)",
        ),
        (
            {"access": {"personas": {"legal": {"channels": ["dicord:#legal"]}}}},
            "[access.personas.legal] channels: 'dicord:#legal' names the platform 'dicord', which no "
            "adapter has; did you mean 'discord'? (adapters: console, discord, slack)",
        ),
        (
            {"retention": {"personas": {"legl": "30d"}}},
            "[retention.personas] 'legl': it would remove nothing: there is no persona 'legl' "
            "(personas: general, legal, math, medical); did you mean 'legal'?",
        ),
        (
            {"retention": {"channels": {"slak:C0LEGAL": "7d"}}},
            "[retention.channels] 'slak:C0LEGAL': 'slak:C0LEGAL' names the platform 'slak', which no "
            "adapter has; did you mean 'slack'? (adapters: console, discord, slack)",
        ),
    ],
    ids=[
        "binding",
        "access-personas",
        "binding-platform",
        "access-channel-platform",
        "retention",
        "retention-channel",
    ],
)
async def test_a_misspelt_persona_name_stops_start_up_naming_it(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        async with TestBot(tmp_path, settings=settings):
            pass
    assert str(caught.value) == message


async def test_a_bound_persona_whose_file_is_broken_at_start_starts_and_says_it_does_not_load(
    tmp_path: Path,
) -> None:
    """Not a typo (the file is there): start-up goes on, and the channel is told the persona's
    file does not load, not that the persona "does not exist"."""
    folder = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), folder)
    (folder / "legal.md").write_text("---\nname: legal\ntemprature: 0.6\n---\n{{ question }}\n")
    settings = {"personas": {"dir": str(folder), "bindings": {"test:C0LEGAL": "legal"}}}
    async with TestBot(tmp_path, settings=settings) as bot:
        reply = await bot.ask("Can I sublet?", channel="C0LEGAL")
    assert reply.text == (
        "⚠️ Persona 'legal' (bound to this channel (test:C0LEGAL)) is not available right now: its file "
        "does not load. The bot's admins can see why with `botkit personas check`."
    )


def test_botkit_chat_with_a_misspelt_binding_exits_2_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "botkit.toml"
    config.write_text('[llm]\nbackend = "standin"\n[personas.bindings]\n"slack:C0LEGAL" = "legl"\n')
    assert main(["--config", str(config), "chat"]) == 2
    err = capsys.readouterr().err
    assert "botkit: error: [personas.bindings] 'slack:C0LEGAL' = 'legl': there is no persona 'legl'" in err
    assert "Traceback" not in err


async def test_a_deleted_bound_persona_refuses_visibly_and_other_channels_still_answer(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), folder)
    settings = {"personas": {"dir": str(folder), "bindings": {"test:C0LEGAL": "legal"}}}
    async with TestBot(tmp_path, settings=settings) as bot:
        before = await bot.ask("Can I sublet my flat?", channel="C0LEGAL", roles=["legal"])
        (folder / "legal.md").unlink()
        bot.bot.personas.load()
        after = await bot.ask("Can I sublet my flat?", channel="C0LEGAL", roles=["legal"])
        elsewhere = await bot.ask("What is 6*7?", channel="C0GENERAL")
    assert "legal team" in bot.standin.requests[0]["messages"][-1]["content"]  # the legal persona answered
    assert before.text and not before.text.startswith("⚠️")
    assert after.text == (
        "⚠️ Persona 'legal' (bound to this channel (test:C0LEGAL)) does not exist. "
        "Available personas: general, math, medical."
    )
    assert len(bot.standin.requests) == 2  # the refused question never reached the model
    assert "The final answer is 42." in elsewhere.text
