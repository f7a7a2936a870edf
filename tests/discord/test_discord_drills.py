"""Fault drills on Discord: the gateway dropped mid-reply (RESUME with the missed dispatches
replayed, and INVALID_SESSION so discord.py identifies again), and 429 on every third message
edit for a (virtual) minute.

Each asserts what the fake Discord received (every version of every message: the POST that
created it and every PATCH that edited it) and what the database holds: one final reply per
accepted message, no duplicate, no row left ``queued``/``streaming``, no complete answer
overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from discord_harness import DiscordRig, discord_rig
from drills import assert_one_final_reply_each, assert_only_grew, wait_idle

from botkit.testing.fake_discord import FakeDiscord

LONG = " ".join(f"word{i}" for i in range(120))
STREAMING = {"stream": {"edit_interval": 0.05}}
EDITS = r"^/channels/\d+/messages/\d+$"


def _content(body: Any) -> str:
    return str((body or {}).get("content") or "")


def _versions(fake: FakeDiscord, thread: int) -> list[str]:
    """Every version of the bot's one message in ``thread`` (created once, then only edited
    forward, nothing after its final text); returns them, oldest first."""
    me = fake.bot_user["id"]
    (reply,) = [m for m in fake.messages_in(thread) if m["author"]["id"] == me]
    (created,) = [c for c in fake.calls_to("POST", rf"^/channels/{thread}/messages$") if c.status == 200]
    edits = [
        c for c in fake.calls_to("PATCH", rf"^/channels/{thread}/messages/{reply['id']}$") if c.status == 200
    ]
    versions = [_content(created.body)] + [_content(c.body) for c in edits]
    assert_only_grew(versions, reply["content"])
    return versions


async def _mention(rig: DiscordRig, user: int, text: str) -> int:
    """A mention in the channel; returns its thread's id (a thread gets its message's id)."""
    asked = await rig.fake.user_message(user, rig.fake.channel_id, f"{rig.fake.mention} {text}")
    return int(asked["id"])


async def _answered(rig: DiscordRig, thread: int, text: str, timeout: float = 20) -> None:
    me = rig.fake.bot_user["id"]
    await rig.fake.wait_for(
        lambda: any(m["content"] == text for m in rig.fake.messages_in(thread) if m["author"]["id"] == me),
        timeout,
    )


async def _long_reply_streaming(rig: DiscordRig, then: str) -> tuple[int, dict[str, Any]]:
    """Alice mentions the bot; returns (her id, her message) once the long answer is streaming
    into its thread. The model's next answer is ``then``."""
    fake, standin = rig.fake, rig.bot.standin
    standin.tokens_per_second = 80
    standin.script_reply(LONG)
    standin.script_reply(then)
    user = fake.add_user("alice")
    asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} a long answer please")
    await fake.wait_for(lambda: len(fake.calls_to("PATCH", rf"^/channels/{asked['id']}/messages/")) >= 2, 15)
    return user, asked


async def _both_answered_once(rig: DiscordRig, first: int, second: int, then: str) -> None:
    """The long reply in ``first`` and ``then`` in ``second`` each landed once and are stored."""
    await _answered(rig, second, then)
    await _answered(rig, first, LONG)
    await wait_idle(rig.bot)
    fake = rig.fake
    assert _versions(fake, first)[-1] == LONG
    assert _versions(fake, second)[-1] == then
    assert len(fake.calls_to("POST", "/threads$")) == 2
    assert len(rig.bot.standin.requests) == 2
    answers = await assert_one_final_reply_each(rig.bot.database_url, 2)
    assert [a.content for a in answers] == [LONG, then]


async def test_gateway_dropped_mid_reply_resumes_and_a_replayed_message_is_not_answered_twice(
    tmp_path: Path,
) -> None:
    """Discord closes the gateway (4000) while a reply streams; discord.py RESUMEs and the fake
    replays what it missed (a mention sent meanwhile) and, at least once, the MESSAGE_CREATE of
    the question being answered: the streaming reply completes once, the missed mention is
    answered once, the replayed one not again."""
    async with discord_rig(tmp_path, core=STREAMING) as rig:
        fake = rig.fake
        user, asked = await _long_reply_streaming(rig, "answered after the resume")
        first = int(asked["id"])

        fake.replay_seen_messages = True
        assert await fake.drop_gateway(4000) == 1
        missed = await _mention(rig, user, "did you miss me?")
        await fake.wait_for(lambda: len(fake.resumes) == 1, 15)
        await fake.wait_until_connected()
        await _both_answered_once(rig, first, missed, "answered after the resume")

        assert len(fake.identifies) == 1 and fake.invalid_sessions == 0  # resumed, not re-identified
        replayed = [int(p["d"]["id"]) for p in fake.replayed if p["t"] == "MESSAGE_CREATE"]
        assert {first, missed} <= set(replayed)  # the missed mention, and the one already answered
        sequences = [int(p["s"]) for p in fake.replayed]  # each with its own ``s``, in order
        assert sequences == sorted(set(sequences))


async def test_gateway_resume_refused_reidentifies_and_the_reply_completes_once(tmp_path: Path) -> None:
    """The RESUME is answered INVALID_SESSION: discord.py identifies again (a new session; what
    it missed is gone). The reply streaming meanwhile completes once, the question's
    MESSAGE_CREATE delivered again after the new READY starts nothing, and a new mention is
    answered once."""
    async with discord_rig(tmp_path, core=STREAMING) as rig:
        fake = rig.fake
        user, asked = await _long_reply_streaming(rig, "answered in the new session")

        fake.invalidate_resumes = True
        assert await fake.drop_gateway(4000) == 1
        # discord.py waits 5 s before identifying again (its before_identify_hook), as Discord's
        # identify limit asks; the reply keeps streaming over REST meanwhile.
        await fake.wait_for(lambda: len(fake.identifies) == 2, 15)
        await fake.wait_until_connected()
        await fake.redeliver(asked)
        second = await _mention(rig, user, "a new question")
        await _both_answered_once(rig, int(asked["id"]), second, "answered in the new session")
        assert len(fake.resumes) == 1 and fake.invalid_sessions == 1


async def test_429_on_every_third_edit_for_a_minute(tmp_path: Path) -> None:
    """Every third message edit is a 429 (no ``Via``: discord.py hands it to botkit) for a virtual
    minute: the first ``minute`` edits (counted, not timed, so the drill takes seconds). Six
    replies at once, each in its own thread: every final text lands, once, equal to the stored
    answer, and a refused thread sent nothing while its budget was paused."""
    minute, retry_after, replies = 15, 0.3, 6
    async with discord_rig(tmp_path, core=STREAMING, edits_per_second=1000.0) as rig:
        fake = rig.fake
        fake.rate_limit("PATCH", EDITS, every=3, count=minute, retry_after=retry_after, via=False)
        rig.bot.standin.tokens_per_second = 200
        user = fake.add_user("alice")
        threads = [await _mention(rig, user, f"question number {i}") for i in range(replies)]
        await rig.fake.wait_for(
            lambda: all(
                any(m["content"].endswith("from the botkit vLLM stand-in.") for m in fake.messages_in(t))
                for t in threads
            ),
            40,
        )
        await wait_idle(rig.bot)

        edits = fake.calls_to("PATCH", EDITS)
        # How many edits the replies make depends on how fast they stream; the pattern holds for
        # however many of the "minute" they used (at least three rounds of it).
        used = min(len(edits), minute)
        assert used >= 9
        assert [c.status for c in edits[:used]] == [200, 200, 429] * (used // 3) + [200] * (used % 3)
        assert len([c for c in fake.calls if c.status == 429]) == used // 3
        answers = await assert_one_final_reply_each(rig.bot.database_url, replies)
        stored = {int(i): a.content for a in answers for i in a.platform_message_ids}
        for number, thread in enumerate(threads):
            final = _versions(fake, thread)[-1]
            (reply,) = [m for m in fake.messages_in(thread) if m["author"]["id"] == fake.bot_user["id"]]
            assert final == stored[int(reply["id"])]
            assert f"question number {number}" in final
        # The 429 paused that thread's budget: nothing went to it until the pause was over.
        for limited in [c for c in edits if c.status == 429]:
            channel = limited.path.split("/")[2]
            during = [
                c
                for c in fake.calls
                if c.path.startswith(f"/channels/{channel}/") and limited.at < c.at < limited.at + retry_after
            ]
            assert during == [], during
