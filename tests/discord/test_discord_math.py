"""Math on Discord: the formula PNG as a message attachment (multipart files[0] + payload_json)
after the final text, the Unicode text, and /math in a bound channel."""

from __future__ import annotations

import io
from pathlib import Path

from discord_harness import discord_rig
from drills import wait_idle

from botkit.config import Binding
from botkit.testing.fake_discord import FakeDiscord

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ANSWER = "We solve $$x^2 - 5x + 6 = 0$$ and get $x = \\frac{5 \\pm 1}{2}$, so $\\boxed{2, 3}$."


def _attached(fake: FakeDiscord) -> list[tuple[dict[str, object], bytes]]:
    return [
        (fake.messages[mid], part.data)
        for mid, parts in fake.files.items()
        if mid in fake.messages
        for part in parts
    ]


async def test_slash_math_gets_unicode_text_and_a_png_attachment(tmp_path: Path) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        rig.bot.standin.script_reply(ANSWER)
        student = fake.add_user("student", roles=["student"])
        interaction = await fake.slash_command(student, "math", {"question": "Solve x^2 - 5x + 6 = 0"})
        await fake.wait_for(lambda: bool(_attached(fake)), 15)
        texts = fake.interaction_messages(interaction.id)

    final = texts[0]
    assert "x = (5 ± 1)/2" in final and "x² - 5x + 6 = 0" in final and "\\frac" not in final
    assert final.rstrip().endswith("**Final answer:** `2, 3`")
    ((message, data),) = _attached(fake)
    assert data.startswith(PNG_SIGNATURE)
    from matplotlib.image import imread

    assert imread(io.BytesIO(data), format="png").shape[0] > 40
    attachment = message["attachments"][0]  # type: ignore[index]
    assert attachment["filename"] == "formulas.png" and attachment["size"] == len(data)
    assert attachment["description"] == "Formulas: x² - 5x + 6 = 0; Answer: 2, 3"
    # A follow-up of the interaction, posted after the final edit of the answer.
    assert int(message["id"]) in interaction.followup_ids  # type: ignore[arg-type]
    posts = [i for i, c in enumerate(fake.calls) if c.method == "POST" and "/webhooks/" in c.path]
    patches = [i for i, c in enumerate(fake.calls) if c.method == "PATCH" and "@original" in c.path]
    assert posts[-1] > patches[-1]


async def test_a_math_mention_gets_its_png_in_the_channel(tmp_path: Path) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        rig.bot.standin.script_reply(ANSWER)
        user = fake.add_user("alice")
        await fake.user_message(user, fake.channel_id, f"{fake.mention} solve x^2 - 5x + 6 = 0")
        await fake.wait_for(lambda: bool(_attached(fake)), 15)
        prompt = rig.bot.standin.requests[-1]["messages"][-1]["content"]
    assert "Please reason step by step" in prompt
    ((message, data),) = _attached(fake)
    assert data.startswith(PNG_SIGNATURE) and message["author"]["id"] == fake.bot_user["id"]  # type: ignore[index]


async def test_slash_math_in_a_channel_whose_binding_forbids_commands_is_refused_privately(
    tmp_path: Path,
) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        bindings = rig.bot.bot.settings.personas.bindings
        bindings[f"discord:{fake.channel_id}"] = Binding(persona="general", allow_commands=False)
        student = fake.add_user("student", roles=["student"])
        interaction = await fake.slash_command(student, "math", {"question": "What is 17*23?"})
        await fake.wait_for(lambda: any("/math" in t for t in fake.ephemeral_messages(interaction.id)), 15)
        notices = fake.ephemeral_messages(interaction.id)
    assert len(notices) == 1 and "'general'" in notices[0]
    assert fake.public_messages_in(fake.channel_id) == [] and rig.bot.standin.requests == []


async def test_an_attachment_discord_refuses_leaves_the_answer_complete(tmp_path: Path) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        rig.bot.standin.script_reply(ANSWER)
        # No Attach Files permission: the multipart follow-up is refused with 403.
        fake.fail(
            "POST", r"/webhooks/", status=403, match=lambda body: bool(body and body.get("attachments"))
        )
        student = fake.add_user("student", roles=["student"])
        interaction = await fake.slash_command(student, "math", {"question": "Solve x^2 - 5x + 6 = 0"})
        await fake.wait_for(lambda: any(c.status == 403 and "/webhooks/" in c.path for c in fake.calls), 15)
        await wait_idle(rig.bot)
        texts = fake.interaction_messages(interaction.id)
        unfinished = await rig.bot.store.unfinished_turns()
    assert fake.files == {} and len(texts) == 1
    assert texts[0].rstrip().endswith("**Final answer:** `2, 3`") and "⚠️" not in texts[0]
    assert unfinished == []  # the turn is stored as complete: the upload did not make it an error
