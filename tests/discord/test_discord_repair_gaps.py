"""Discord's restart repair where the platform offers least to find a reply by (no markers):
a second kill after the restart pass posted an "ask again" note, a placeholder past the first
page of its channel, and a long reply's continuation messages. Each drill is a real ``botkit
run`` process SIGKILLed while the fake Discord holds one call, then restarted."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from botkit_discord.adapter import fit_message
from botkit_discord.reply import CONTINUED_NOTE, older_nonce
from test_discord_crash_windows import (
    ANSWER,
    EDIT,
    _assert_repaired_in_place,
    _assistant,
    _bot_messages,
    _botkit_run,
    _env,
    _killed_while_the_placeholder_posts,
    _placeholder,
    _restart_until_settled,
    _until,
)
from test_discord_restart_repair import checked_adapter

from botkit.events import ConversationKey
from botkit.leftovers import (
    LEFTOVER_NOTE,
    LOST_PLACEHOLDER_NOTE,
    UNANSWERED_NOTE,
    WORKER_TAG,
    new_worker_id,
    started_by_older,
)
from botkit.markers import ShownMessage
from botkit.store.spool import SpooledNote, WriteSpool
from botkit.testing import Standin
from botkit.testing.fake_discord import FakeDiscord
from botkit.testing.holds import Hold
from botkit.testing.testbot import TestBot

pytestmark = pytest.mark.timeout(150)

Place = Callable[[FakeDiscord, int], Awaitable[tuple[str, tuple[str, str, str]]]]
"""Has member ``int`` ask a question botkit never answered; its delivery id and conversation key."""


async def _mention_in_its_thread(fake: FakeDiscord, asker: int) -> tuple[str, tuple[str, str, str]]:
    mention = await fake.user_message(asker, fake.channel_id, f"{fake.mention} lost?", dispatch=False)
    thread = await fake.start_thread(int(mention["id"]), "lost?")
    return mention["id"], (str(fake.guild_id), str(fake.channel_id), str(thread))


async def _inline_mention(fake: FakeDiscord, asker: int) -> tuple[str, tuple[str, str, str]]:
    mention = await fake.user_message(asker, fake.channel_id, f"{fake.mention} lost?", dispatch=False)
    return mention["id"], (str(fake.guild_id), str(fake.channel_id), mention["id"])


async def _follow_up(fake: FakeDiscord, asker: int) -> tuple[str, tuple[str, str, str]]:
    mention = await fake.user_message(asker, fake.channel_id, f"{fake.mention} hi", dispatch=False)
    thread = await fake.start_thread(int(mention["id"]), "hi")
    asked = await fake.user_message(asker, thread, "and then?", dispatch=False)
    return asked["id"], (str(fake.guild_id), str(fake.channel_id), str(thread))


async def _direct(fake: FakeDiscord, asker: int) -> tuple[str, tuple[str, str, str]]:
    dm = fake.dm_channel(asker)
    asked = await fake.user_message(asker, dm, "lost?", dispatch=False)
    return asked["id"], ("dm", str(dm), str(dm))


async def _slash_command(fake: FakeDiscord, asker: int) -> tuple[str, tuple[str, str, str]]:
    interaction = str(fake.snowflake())  # its response never came: the note goes to the channel
    return interaction, (str(fake.guild_id), str(fake.channel_id), interaction)


def _notes(fake: FakeDiscord) -> list[dict[str, Any]]:
    return [m for m in _bot_messages(fake) if m["content"] == UNANSWERED_NOTE]


async def _sigkill_at(
    tmp_path: Path, env: dict[str, str], held: Hold, then: Callable[[], Awaitable[str]] | None = None
) -> str:
    """Start botkit (its restart pass runs first), await ``then`` (what happens while it runs;
    its result is returned) and SIGKILL it once ``held`` is reached."""
    process = await _botkit_run(tmp_path, env)
    done = ""
    try:
        if then is not None:
            done = await then()
        await asyncio.wait_for(held.reached.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    return done


PLACES = {
    "thread": _mention_in_its_thread,
    "inline": _inline_mention,
    "follow-up": _follow_up,
    "dm": _direct,
    "slash-command": _slash_command,
}


BETWEEN = "between"  # accepted at once for the killed pass, an hour earlier for the next one


@pytest.mark.parametrize(
    ("where", "late"),
    [
        *((where, True) for where in PLACES),
        *((where, False) for where in ("thread", "slash-command")),
        *((where, BETWEEN) for where in ("thread", "slash-command")),
    ],
    ids=[
        *(f"{where}-an-hour-later" for where in PLACES),
        *(f"{where}-at-once" for where in ("thread", "slash-command")),
        *(f"{where}-window-passed-between" for where in ("thread", "slash-command")),
    ],
)
async def test_a_second_kill_after_the_restart_posted_the_ask_again_note_leaves_one_note(
    tmp_path: Path, where: str, late: bool | str
) -> None:
    """An accepted message no turn adopted (no placeholder): the restart pass tells the asker in
    a new reply, and is SIGKILLed once Discord created that note (its response not back, the row
    not settled). The third start finds the note and leaves it alone: one note, in every place
    a question can be asked, and the row ``interrupted``. ``late``: the message was accepted an
    hour before the restarts, far past the window in which its reply is looked for after its
    question (the note is found by the time the pass spooled before posting it). ``between``:
    the killed pass ran while the question was recent (its note without the sentence on an
    earlier reply still "Thinking…"), the next one past the window (its listing cut: its note
    would carry it) once Discord forgot the nonce: the note is found all the same."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin() as standin:
        delivery, key = await PLACES[where](fake, fake.add_user("ada"))
        async with TestBot(tmp_path / "crashed", database_url=f"sqlite+aiosqlite:///{database}") as crashed:
            assert await crashed.store.accept("discord", delivery, key, user_text="lost?", user_id="1")
        if late is True:
            with sqlite3.connect(database) as db:
                db.execute("UPDATE messages SET created_at = datetime(created_at, '-1 hour')")
        env = _env(fake, standin, database)
        held = fake.hold(
            "POST",
            r"^/channels/\d+/messages$",
            apply=True,
            match=lambda body: isinstance(body, dict) and body.get("content") == UNANSWERED_NOTE,
        )
        await _sigkill_at(tmp_path, env, held)
        (note,) = _notes(fake)
        assert [s for s, _ in _assistant(database)] == ["queued"]  # not settled yet
        if late == BETWEEN:
            _accepted_an_hour_earlier(database)
            fake.nonce_seconds = 0.0

        log = await _restart_until_settled(fake, tmp_path, env, database)
        assert [m["id"] for m in _bot_messages(fake)] == [note["id"]], log.decode()[-3000:]
    assert fake.versions_of(int(note["id"])) == [UNANSWERED_NOTE]  # never edited either
    assert [s for s, _ in _assistant(database)] == ["interrupted"]
    assert list((tmp_path / "botkit.db.pending").glob("*.json")) == []  # the note's record went


LONG_PARTIAL = " ".join(f"part{i}" for i in range(290))  # 1,969 characters: near Discord's 2,000


def _last_part_of_the_note(body: Any) -> bool:
    """The POST of a long note's last message: the one that says it was interrupted."""
    content = body.get("content", "") if isinstance(body, dict) else ""
    return content.endswith((LEFTOVER_NOTE, LOST_PLACEHOLDER_NOTE)) and not content.startswith("part0")


async def _a_long_partial_accepted_long_ago(
    fake: FakeDiscord, standin: Standin, tmp_path: Path, where: str
) -> dict[str, str]:
    """A turn accepted an hour ago ``where`` that streamed :data:`LONG_PARTIAL` and has no
    message recorded (its restart posts a note of two messages); the env to run botkit with."""
    database = tmp_path / "botkit.db"
    delivery, key = await PLACES[where](fake, fake.add_user("ada"))
    async with TestBot(tmp_path / "crashed", database_url=f"sqlite+aiosqlite:///{database}") as crashed:
        assert await crashed.store.accept("discord", delivery, key, user_text="lost?", user_id="1")
    with sqlite3.connect(database) as db:  # it streamed this much; no message recorded
        db.execute(
            "UPDATE messages SET status = 'streaming', content = ?, persona_name = 'default' "
            "WHERE role = 'assistant'",
            (LONG_PARTIAL,),
        )
    _accepted_an_hour_earlier(database)
    return _env(fake, standin, database)


@pytest.mark.parametrize("where", ["thread", "slash-command"])
async def test_a_second_kill_after_a_note_longer_than_one_message_leaves_one_note(
    tmp_path: Path, where: str
) -> None:
    """As above, for a turn that streamed a partial answer near Discord's 2,000 characters and
    has no message to repair (accepted an hour before the restarts): the restart's note (the
    partial answer and what happened) is posted as two messages, and the pass is SIGKILLed once
    Discord created the second (its response not back, the row not settled). The next start,
    Discord's nonce memory past, finds the note by its first message and the rest after it:
    those two messages, never edited, and nothing more; the row ``interrupted``."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin() as standin:
        env = await _a_long_partial_accepted_long_ago(fake, standin, tmp_path, where)
        held = fake.hold("POST", r"^/channels/\d+/messages$", apply=True, match=_last_part_of_the_note)
        await _sigkill_at(tmp_path, env, held)
        note = sorted(_bot_messages(fake), key=lambda m: int(m["id"]))
        # Cut at a space, which ended the first message and Discord trimmed away (fake_discord).
        assert len(note) == 2 and " ".join(m["content"] for m in note).startswith(LONG_PARTIAL)
        assert note[-1]["content"].endswith((LEFTOVER_NOTE, LOST_PLACEHOLDER_NOTE))
        assert [s for s, _ in _assistant(database)] == ["streaming"]  # not settled yet
        fake.nonce_seconds = 0.0

        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert [m["id"] for m in _bot_messages(fake)] == [m["id"] for m in note], log.decode()[-3000:]
    assert [fake.versions_of(int(m["id"])) for m in note] == [[m["content"]] for m in note]
    assert _assistant(database) == [("interrupted", LONG_PARTIAL)]
    assert list((tmp_path / "botkit.db.pending").glob("*.json")) == []  # the note's record went


async def _killed_between_a_long_notes_messages(
    fake: FakeDiscord, standin: Standin, tmp_path: Path, where: str
) -> tuple[dict[str, str], dict[str, Any], str]:
    """The restart pass of :func:`_a_long_partial_accepted_long_ago`'s turn SIGKILLed after its
    note's first message was created and before its second was (that POST held, not applied),
    then Discord's nonce memory past: the env, that first message, and the rest's text."""
    env = await _a_long_partial_accepted_long_ago(fake, standin, tmp_path, where)
    held = fake.hold("POST", r"^/channels/\d+/messages$", apply=False, match=_last_part_of_the_note)
    await _sigkill_at(tmp_path, env, held)
    (first,) = _bot_messages(fake)
    rest = held.args.get("content", "") if isinstance(held.args, dict) else ""
    fake.nonce_seconds = 0.0
    return env, first, rest


@pytest.mark.parametrize("where", ["thread", "slash-command"])
async def test_a_kill_between_a_long_notes_messages_leaves_one_whole_note(tmp_path: Path, where: str) -> None:
    """As above, but the pass is SIGKILLed after the note's first message was created and
    before its second was (that POST held, not applied). The next start, Discord's nonce
    memory past, finds the note's first message and not the rest: it posts only the rest,
    after it (a continuation: no nonce), so the asker sees one whole note, no part twice; the
    row ``interrupted``, the note's record gone."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin() as standin:
        env, first, rest = await _killed_between_a_long_notes_messages(fake, standin, tmp_path, where)
        assert LONG_PARTIAL.startswith(first["content"]) and rest.endswith(LEFTOVER_NOTE)
        assert [s for s, _ in _assistant(database)] == ["streaming"]  # not settled yet

        log = await _restart_until_settled(fake, tmp_path, env, database)
        note = sorted(_bot_messages(fake), key=lambda m: int(m["id"]))
    assert [m["id"] for m in note][:1] == [first["id"]], log.decode()[-3000:]
    # One whole note, no part twice: its first message, then the rest in one. This pass may
    # word the rest with the sentence on a cut listing (the first part alone cannot say which
    # form the killed pass chose); either way the partial answer shows once, then the note.
    assert len(note) == 2 and note[0]["content"] == first["content"]
    whole = f"{LONG_PARTIAL}\n\n{LEFTOVER_NOTE}"
    assert " ".join(m["content"] for m in note) in (whole, f"{whole}\n\n{LOST_PLACEHOLDER_NOTE}")
    assert note[1]["content"].startswith(rest.split("\n")[0])
    assert [fake.versions_of(int(m["id"])) for m in note] == [[m["content"]] for m in note]
    assert _assistant(database) == [("interrupted", LONG_PARTIAL)]
    assert list((tmp_path / "botkit.db.pending").glob("*.json")) == []  # the note's record went


# -- a placeholder past the first page of its place ---------------------------------------------
BUSY = 150  # other messages between the question and the bot's placeholder: past one page of 100


async def _busy(fake: FakeDiscord, channel: int, after: dict[str, Any]) -> None:
    """``BUSY`` members' messages after ``after`` in ``channel``, seeded without gateway events."""
    chatter = fake.add_user("bob")
    for i in range(BUSY):
        await fake.user_message(chatter, channel, f"chatter {i}", dispatch=False)
    assert int(fake.messages_in(channel)[-1]["id"]) > int(after["id"])


@pytest.mark.parametrize("where", ["inline", "dm"])
async def test_a_placeholder_posted_but_not_recorded_past_a_page_of_chatter_is_repaired_in_place(
    tmp_path: Path, where: str
) -> None:
    """150 other messages after the question before the bot's placeholder (its POST held,
    applied, and botkit SIGKILLed while the answer streams): the restart pages through the
    listing (``after=``, 100 a page), finds the placeholder that replies to the question and
    edits it in place; exactly one reply, no "ask again" note."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _env(fake, standin, database) | {"BOTKIT_DISCORD__MENTION_MODE": "inline"}
        asked: dict[str, Any] = {}

        async def busy_question(fake: FakeDiscord, asker: int) -> Hold:
            channel = fake.dm_channel(asker) if where == "dm" else fake.channel_id
            text = "tell me a story" if where == "dm" else f"{fake.mention} tell me a story"
            asked.update(await fake.user_message(asker, channel, text, dispatch=False))
            await _busy(fake, channel, asked)
            held = fake.hold("POST", rf"^/channels/{channel}/messages$", apply=True)
            await fake.redeliver(asked)
            return held

        checkpoint = await _killed_while_the_placeholder_posts(fake, tmp_path, env, database, busy_question)
        placeholder = _placeholder(fake, set())
        assert placeholder["message_reference"]["message_id"] == asked["id"]
        channel = int(placeholder["channel_id"])
        after = [m for m in fake.messages_in(channel) if int(m["id"]) > int(asked["id"])]
        assert after.index(placeholder) == BUSY  # the 151st message after its question
        log = await _restart_until_settled(fake, tmp_path, env, database)
    _assert_repaired_in_place(fake, placeholder, checkpoint, log)
    assert len(_bot_messages(fake)) == 1  # no note posted beside it
    assert _assistant(database) == [("interrupted", checkpoint)]


async def test_the_listing_pages_with_after_and_stops_at_the_window(tmp_path: Path) -> None:
    """``reply_messages`` through discord.py against the fake: the bot's reply 250 messages
    after its question is found in three pages of 100 (the fake answers ``after=`` as Discord
    does: at most 100, the oldest after the id, newest first); for a turn accepted longer ago
    than ``discord.repair_window_seconds`` before those messages, one page is read and nothing
    of it is taken (every message is later than the turn could have posted)."""
    async with FakeDiscord() as fake, checked_adapter(tmp_path, fake) as adapter:
        asker = fake.add_user("ada")
        question = await fake.user_message(asker, fake.channel_id, f"{fake.mention} hi", dispatch=False)
        for i in range(250):
            await fake.user_message(asker, fake.channel_id, f"more {i}", dispatch=False)
        reply = fake.bot_message(
            fake.channel_id,
            "_Thinking…_",
            message_reference={"message_id": question["id"], "channel_id": str(fake.channel_id)},
        )
        key = ConversationKey("discord", str(fake.guild_id), str(fake.channel_id), question["id"])
        lists = rf"^/channels/{fake.channel_id}/messages$"  # (the key's thread is no channel: 404)
        shown = await adapter.reply_messages(key, 1, question=question["id"], since=time.time())
        assert shown == [ShownMessage(reply["id"], "_Thinking…_")]
        pages = fake.calls_to("GET", lists)
        ids = sorted(int(m["id"]) for m in fake.messages_in(fake.channel_id))
        # 100 + 100 + 51, each page after the newest of the one before
        assert [c.query for c in pages] == [
            {"limit": "100", "after": str(after)} for after in (question["id"], ids[100], ids[200])
        ]
        before = len(fake.calls_to("GET", lists))
        long_ago = time.time() - adapter.config.repair_window_seconds - 60
        assert await adapter.reply_messages(key, 1, question=question["id"], since=long_ago) == []
        assert len(fake.calls_to("GET", lists)) - before == 1


async def test_find_shown_takes_a_chunk_ending_in_a_space_as_discord_keeps_it(tmp_path: Path) -> None:
    """A chunk ending in a space (``split_message`` cuts a long line at a space and keeps it
    there) posted through discord.py: Discord keeps the content without it (the fake trims, as
    Discord is reported to), and the restart's search by text still finds that message, by the
    chunk as it was sent; a text that differs in more than the outer whitespace is not taken."""
    async with FakeDiscord() as fake, checked_adapter(tmp_path, fake) as adapter:
        asker = fake.add_user("ada")
        question = await fake.user_message(asker, fake.channel_id, f"{fake.mention} hi", dispatch=False)
        key = ConversationKey("discord", str(fake.guild_id), str(fake.channel_id), question["id"])
        reply = await adapter.reply_in(key, str(asker), question=question["id"])
        assert reply is not None
        chunk = "word " * 40  # ends in a space
        posted = await reply.post_continuation(chunk)
        assert fake.versions_of(int(posted)) == [chunk.rstrip()]  # as Discord keeps it
        found = await adapter.find_shown(key, chunk, after=question["id"])
        assert found == [ShownMessage(posted, chunk.rstrip())]
        assert await adapter.find_shown(key, chunk + "word", after=question["id"]) == []


# -- a reply longer than one message ------------------------------------------------------------
SHORT_LIMIT = 300  # discord.max_chars: a reply of two messages without a long stream
LONG_ANSWER = " ".join(f"word{i}" for i in range(70))  # 419 characters: two messages


def _recorded_ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        ((ids,),) = db.execute("SELECT platform_message_ids FROM messages WHERE role = 'assistant'")
    return [] if ids is None else list(json.loads(ids))


def _continuation(body: Any) -> bool:
    """The final view's POST of the reply's second message (no reference: not the placeholder)."""
    return (
        isinstance(body, dict)
        and "message_reference" not in body
        and body.get("content", "").startswith("word")
    )


def _buttons(body: Any) -> bool:
    """The final view's last call: the last message's edit that adds the 👍/👎 buttons."""
    return isinstance(body, dict) and bool(body.get("components"))


def _shown_to_all(fake: FakeDiscord) -> list[dict[str, Any]]:
    """The bot's messages everyone sees (a vote's ephemeral thanks left out)."""
    return [m for m in _bot_messages(fake) if not int(m.get("flags", 0)) & 64]


def _turn_and_votes(database: Path) -> tuple[int, list[tuple[str, str]]]:
    """The assistant row's id and the votes stored on it (voter, vote)."""
    with sqlite3.connect(database) as db:
        ((turn,),) = db.execute("SELECT id FROM messages WHERE role = 'assistant'")
        votes = list(db.execute("SELECT voter, vote FROM feedback WHERE message_id = ?", (turn,)))
    return turn, votes


async def _restart_and_vote(
    fake: FakeDiscord, tmp_path: Path, env: dict[str, str], database: Path, voter: int
) -> bytes:
    """A second ``botkit run`` once the killed one's gateway is gone: its restart pass settles
    the turn; then, where the reply's last message shows the turn's 👍 (a complete answer),
    ``voter`` clicks it and the vote is stored before the process stops. Its log."""
    await fake.wait_for(lambda: not fake._connections, 30)
    second = await _botkit_run(tmp_path, env)
    try:
        await fake.wait_until_connected(60)  # the restart pass ran before it connected
        await _until(lambda: all(s not in ("queued", "streaming") for s, _ in _assistant(database)))
        last = max(int(m["id"]) for m in _shown_to_all(fake))
        turn, _ = _turn_and_votes(database)
        if f"botkit:feedback:up:{turn}" in [b.get("custom_id") for b in fake.buttons(last)]:
            await fake.click_button(voter, last, f"botkit:feedback:up:{turn}", timeout=30)
            await _until(lambda: bool(_turn_and_votes(database)[1]))
    finally:
        second.terminate()
        _, log = await second.communicate()
    return log


def _long_answer(fake: FakeDiscord, standin: Standin, database: Path) -> dict[str, str]:
    """Script the two-message answer; the env that answers an inline mention with it."""
    standin.script_reply(LONG_ANSWER)
    return _env(fake, standin, database) | {
        "BOTKIT_DISCORD__MENTION_MODE": "inline",
        "BOTKIT_DISCORD__MAX_CHARS": str(SHORT_LIMIT),
    }


async def _killed_in_a_long_final_view(
    fake: FakeDiscord, tmp_path: Path, env: dict[str, str], held: str, *, applied: bool
) -> int:
    """``botkit run`` asked for a long answer by a new member (returned) inline, SIGKILLed while
    the final view's continuation POST or its buttons' PATCH (``held``) is held."""
    match = _continuation if held == "continuation-post" else _buttons
    method, path = ("POST", r"^/channels/\d+/messages$") if held == "continuation-post" else ("PATCH", EDIT)
    hold = fake.hold(method, path, apply=applied, match=match)
    first = await _botkit_run(tmp_path, env)
    asker = fake.add_user("ada")
    try:
        await fake.wait_until_connected(60)
        await fake.user_message(asker, fake.channel_id, f"{fake.mention} a long story")
        await asyncio.wait_for(hold.reached.wait(), 60)
        if held == "buttons-edit":  # recorded as posted, before the final write
            await _until(lambda: len(_recorded_ids(tmp_path / "botkit.db")) == 2)
    finally:
        if first.returncode is None:
            first.kill()
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    return asker


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
@pytest.mark.parametrize("held", ["continuation-post", "buttons-edit"])
async def test_a_long_replys_final_view_in_flight_then_restart_decides_from_all_its_messages(
    tmp_path: Path, held: str, applied: bool
) -> None:
    """A two-message answer (inline mention, ``discord.max_chars`` 300, no streaming edit before
    the final view: placeholder edited to the first part, the second posted, then given its
    buttons), botkit SIGKILLed while one of the final view's calls is held:

    - the continuation's POST (its id never comes back): applied, the restart finds that
      message after the first by its text, so the intent is shown: stored ``complete``, its
      text never edited; not applied, the view is not shown: stored ``interrupted``, the first
      message says so;
    - the last PATCH (the buttons), with the continuation's id recorded as it was posted:
      the texts of both messages show the intent either way, so the turn is stored
      ``complete`` and neither text is edited again.

    The 👍/👎 buttons come with the view's last call: where the view is shown without them
    (the POST applied, or the buttons' PATCH not), the restart adds them to the last message
    (one PATCH of its components, its text unchanged), and a click on them is a stored vote;
    where that PATCH landed, nothing more is sent.
    """
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        env = _long_answer(fake, standin, database)
        asker = await _killed_in_a_long_final_view(fake, tmp_path, env, held, applied=applied)
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming" and checkpoint != LONG_ANSWER
        before = {m["id"]: fake.versions_of(int(m["id"])) for m in _bot_messages(fake)}
        shown = [m["content"] for m in sorted(_bot_messages(fake), key=lambda m: int(m["id"]))]
        log = await _restart_and_vote(fake, tmp_path, env, database, asker)
    messages = sorted(_shown_to_all(fake), key=lambda m: int(m["id"]))
    turn, votes = _turn_and_votes(database)
    if held == "buttons-edit" or applied:
        assert len(shown) == 2
        assert [m["id"] for m in messages] == list(before), log.decode()[-3000:]
        last = messages[-1]["id"]
        added = not (held == "buttons-edit" and applied)  # the restart gave them
        # No text ever changed: the last message's one new version is its buttons' PATCH.
        assert {m["id"]: fake.versions_of(int(m["id"])) for m in messages} == before | (
            {last: [*before[last], before[last][-1]]} if added else {}
        )
        assert " ".join(m["content"] for m in messages).split() == LONG_ANSWER.split()
        assert _assistant(database) == [("complete", LONG_ANSWER)]
        assert _recorded_ids(database) == [m["id"] for m in messages]
        assert [b["custom_id"] for b in fake.buttons(int(last))] == [
            f"botkit:feedback:up:{turn}",
            f"botkit:feedback:down:{turn}",
        ]
        assert not fake.buttons(int(messages[0]["id"]))
        assert votes == [(str(asker), "up")]  # the click on them is stored
        (thanks,) = [m for m in _bot_messages(fake) if m not in messages]
        assert thanks["content"] == "Thanks for the feedback: your 👍 is recorded."
    else:
        (reply,) = messages  # the second part was never posted
        assert reply["content"] == fit_message(f"{checkpoint}\n\n{LEFTOVER_NOTE}", SHORT_LIMIT)
        assert _assistant(database) == [("interrupted", checkpoint)]
        assert not fake.buttons(int(reply["id"])) and votes == []


@pytest.mark.parametrize("off", ["when-answered", "at-the-restart"])
async def test_a_long_replys_final_view_shown_without_buttons_gets_none_with_feedback_off(
    tmp_path: Path, off: str
) -> None:
    """As above, the continuation's POST applied (the view shown, its buttons' PATCH never
    sent), with ``[feedback] enabled = false`` when the answer was given (its intent meant no
    buttons) or at the restart: the turn is stored ``complete`` and no message gets buttons."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        env = _long_answer(fake, standin, database)
        disabled = {"BOTKIT_FEEDBACK__ENABLED": "false"}
        first_env, second_env = (env | disabled, env) if off == "when-answered" else (env, env | disabled)
        await _killed_in_a_long_final_view(fake, tmp_path, first_env, "continuation-post", applied=True)
        before = {m["id"]: fake.versions_of(int(m["id"])) for m in _bot_messages(fake)}
        log = await _restart_until_settled(fake, tmp_path, second_env, database)
    messages = sorted(_bot_messages(fake), key=lambda m: int(m["id"]))
    assert {m["id"]: fake.versions_of(int(m["id"])) for m in messages} == before, log.decode()[-3000:]
    assert len(messages) == 2 and not any(fake.buttons(int(m["id"])) for m in messages)
    assert _assistant(database) == [("complete", LONG_ANSWER)]


# -- a final view posted anew, its first message too --------------------------------------------
def _inline_env(fake: FakeDiscord, standin: Standin, database: Path, **settings: str) -> dict[str, str]:
    """The drills' environment with inline mentions and ``settings`` (``[discord]`` keys)."""
    extra = {f"BOTKIT_DISCORD__{key.upper()}": value for key, value in settings.items()}
    return _env(fake, standin, database) | {"BOTKIT_DISCORD__MENTION_MODE": "inline"} | extra


def _answer_posted(body: Any) -> bool:
    """The final view's POST of the whole answer as a new message (no reference)."""
    return isinstance(body, dict) and "message_reference" not in body and body.get("content") == ANSWER


async def _placeholder_refused(fake: FakeDiscord) -> str:
    """An inline mention whose placeholder Discord refuses once (403): the final view posts
    the answer as a new message that references nothing."""
    fake.fail(
        "POST",
        rf"^/channels/{fake.channel_id}/messages$",
        status=403,
        match=lambda body: isinstance(body, dict) and bool(body.get("message_reference")),
    )
    question = await fake.user_message(fake.add_user("ada"), fake.channel_id, f"{fake.mention} a story")
    return str(question["id"])


async def _token_aged_out(fake: FakeDiscord) -> str:
    """A slash command whose answer comes after its token's margin: the final view retires the
    interaction's response ("continues below") and posts the answer in the channel."""
    interaction = await fake.slash_command(fake.add_user("ada"), "ask", {"question": "a story"})
    await fake.wait_for(lambda: bool(interaction.original_id), 30)
    return str(interaction.original_id)


@pytest.mark.parametrize("how", ["placeholder-refused", "token-aged-out"])
async def test_a_final_view_posted_anew_in_flight_is_found_by_its_text_and_kept(
    tmp_path: Path, how: str
) -> None:
    """The final view's first message is posted anew by the view itself (no recorded message
    of the turn is in it) and botkit is SIGKILLed with that POST applied, its id never back.
    The restart finds the answer by its text after the turn's last known message (or after
    its question, where it has none): stored ``complete`` with that message's id, no text
    edited, no "ask again" note. The 👍/👎: a slash reply's channel message was posted with
    them (nothing more is sent); the mention's answer was to get them in a PATCH after its
    POST, never sent, so the restart adds them (a components-only PATCH). A slash reply's
    retired response keeps saying that the answer continues below, as it does without a kill."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        aged = how == "token-aged-out"
        env = _inline_env(fake, standin, database, **({"interaction_reply_seconds": "0.5"} if aged else {}))
        if aged:
            standin.time_to_first_token = 1.5  # the answer comes after the token's margin
        hold = fake.hold("POST", rf"^/channels/{fake.channel_id}/messages$", apply=True, match=_answer_posted)

        async def ask() -> str:
            await fake.wait_until_connected(60)
            return await (_placeholder_refused if how == "placeholder-refused" else _token_aged_out)(fake)

        before = await _sigkill_at(tmp_path, env, hold, ask)
        ((status, _),) = _assistant(database)
        assert status == "streaming"
        (answer,) = [m for m in _bot_messages(fake) if m["content"] == ANSWER]
        assert answer["id"] not in _recorded_ids(database)  # its POST's response never came back
        shown = {m["id"]: fake.versions_of(int(m["id"])) for m in _bot_messages(fake)}
        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert _assistant(database) == [("complete", ANSWER)], log.decode()[-3000:]
    added = {answer["id"]: [*shown[answer["id"]], ANSWER]} if how == "placeholder-refused" else {}
    assert {
        m["id"]: fake.versions_of(int(m["id"])) for m in _bot_messages(fake)
    } == shown | added  # same texts
    turn, _ = _turn_and_votes(database)
    assert [b["custom_id"] for b in fake.buttons(int(answer["id"]))] == [
        f"botkit:feedback:up:{turn}",
        f"botkit:feedback:down:{turn}",
    ]
    assert _recorded_ids(database) == [answer["id"]]
    assert _notes(fake) == []
    if how == "token-aged-out":
        assert fake.versions_of(int(before))[-1] == CONTINUED_NOTE


# -- a placeholder past the listing's bounds --------------------------------------------------
def _placeholder_post(body: Any) -> bool:
    """A reply's first message: it replies to its question (an inline mention)."""
    return isinstance(body, dict) and bool(body.get("message_reference"))


def _accepted_an_hour_earlier(database: Path) -> None:
    """The turn's rows say it was accepted an hour before its placeholder was posted: past
    ``discord.repair_window_seconds`` (a placeholder held back that long)."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE messages SET created_at = datetime(created_at, '-1 hour')")


def _inline_question(*, busy: bool = False) -> Callable[[FakeDiscord, int], Awaitable[Hold]]:
    """An inline mention (after ``BUSY`` messages of chatter where ``busy``) whose placeholder's
    POST is held, applied: what ``_killed_while_the_placeholder_posts`` SIGKILLs botkit at."""

    async def ask(fake: FakeDiscord, asker: int) -> Hold:
        question = await fake.user_message(asker, fake.channel_id, f"{fake.mention} a story", dispatch=False)
        if busy:
            await _busy(fake, fake.channel_id, question)
        held = fake.hold(
            "POST", rf"^/channels/{fake.channel_id}/messages$", apply=True, match=_placeholder_post
        )
        await fake.redeliver(question)
        return held

    return ask


@pytest.mark.parametrize("restart", ["soon", "later"])
@pytest.mark.parametrize("bound", ["window", "pages"])
async def test_a_placeholder_past_the_listings_bounds_is_handed_back_or_the_note_says_so(
    tmp_path: Path, bound: str, restart: str
) -> None:
    """An inline mention's placeholder posted (its id never back: SIGKILL while the answer
    streams) where the restart's listing cannot reach it: posted past
    ``discord.repair_window_seconds`` after the turn was accepted, or past
    ``discord.repair_max_pages`` pages of chatter. ``soon``: the restart's note is posted with
    the turn's nonce, Discord (which remembers it for a few minutes) hands back the placeholder
    instead, and that is repaired in place: one message, no "Thinking…", no note. ``later``
    (Discord forgot the nonce): the placeholder cannot be found, and the new note says that an
    earlier reply still "Thinking…" was cut off by the restart."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _inline_env(fake, standin, database, **({"repair_max_pages": "1"} if bound == "pages" else {}))
        ask = _inline_question(busy=bound == "pages")
        checkpoint = await _killed_while_the_placeholder_posts(fake, tmp_path, env, database, ask)
        placeholder = _placeholder(fake, set())
        if bound == "window":
            _accepted_an_hour_earlier(database)
        if restart == "later":
            fake.nonce_seconds = 0.0
        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert _assistant(database) == [("interrupted", checkpoint)], log.decode()[-3000:]
    interrupted = f"{checkpoint}\n\n{LEFTOVER_NOTE}"
    if restart == "soon":
        _assert_repaired_in_place(fake, placeholder, checkpoint, log)
        assert len(_bot_messages(fake)) == 1  # no note posted beside it
    else:
        assert fake.versions_of(int(placeholder["id"])) == ["_Thinking…_"]  # not found
        (note,) = [m for m in _bot_messages(fake) if m["id"] != placeholder["id"]]
        assert note["content"] == f"{interrupted}\n\n{LOST_PLACEHOLDER_NOTE}"


async def test_a_placeholder_handed_back_showing_the_final_view_is_kept(tmp_path: Path) -> None:
    """A placeholder held back until the answer was done posts the answer (the final view's
    intent spooled first); SIGKILL with that POST applied, its id never back, past
    ``discord.repair_max_pages`` pages of chatter (neither the listing nor the search by text
    reaches it). The restart's note is handed back that message instead (the turn's nonce): it
    shows the final view, so the turn is stored ``complete`` and its text is not edited (its
    👍/👎, which its view's PATCH after that POST was to add, are added)."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=0) as standin:
        standin.script_reply(ANSWER)
        env = _inline_env(fake, standin, database, repair_max_pages="1")
        channel = rf"^/channels/{fake.channel_id}/messages$"
        fake.rate_limit("POST", channel, retry_after=1.5, via=False, match=_placeholder_post)
        hold = fake.hold(
            "POST", channel, apply=True, match=lambda b: _placeholder_post(b) and b.get("content") == ANSWER
        )

        async def ask() -> str:
            await fake.wait_until_connected(60)
            question = await fake.user_message(
                fake.add_user("ada"), fake.channel_id, f"{fake.mention} hi", dispatch=False
            )
            await _busy(fake, fake.channel_id, question)
            await fake.redeliver(question)
            return str(question["id"])

        await _sigkill_at(tmp_path, env, hold, ask)
        (answer,) = _bot_messages(fake)
        assert answer["content"] == ANSWER and _recorded_ids(database) == []
        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert _assistant(database) == [("complete", ANSWER)], log.decode()[-3000:]
    assert [m["id"] for m in _bot_messages(fake)] == [answer["id"]]
    # Its text never edited; the 👍/👎 its view's PATCH (never sent) was to add, added.
    assert fake.versions_of(int(answer["id"])) == [ANSWER, ANSWER]
    assert len(fake.buttons(int(answer["id"]))) == 2
    assert _recorded_ids(database) == [answer["id"]]
    # The note's record (spooled before its post was handed the answer) went with the intent.
    assert list((tmp_path / "botkit.db.pending").glob("*.json")) == []


# -- the nonce across databases ------------------------------------------------------------------
async def _answered_once(
    fake: FakeDiscord, tmp_path: Path, env: dict[str, str], database: Path, asker: int
) -> dict[str, Any]:
    """A ``botkit run`` on ``database`` answers one inline mention of ``asker`` and stops; the
    mention's payload."""
    process = await _botkit_run(tmp_path, env)
    try:
        await fake.wait_until_connected(60)
        question = await fake.user_message(asker, fake.channel_id, f"{fake.mention} a story")
        await _until(lambda: [s for s, _ in _assistant(database)] == ["complete"])
    finally:
        process.terminate()
        await process.communicate()
    await fake.wait_for(lambda: not fake._connections, 30)
    return question


def _nonces(fake: FakeDiscord) -> list[str]:
    """The nonce of every message the bot posted with one, in order."""
    return [
        str(c.body["nonce"])
        for c in fake.calls
        if c.method == "POST" and isinstance(c.body, dict) and c.body.get("nonce") is not None
    ]


async def test_the_same_turn_id_in_a_recreated_database_gets_its_own_first_message(tmp_path: Path) -> None:
    """Two ``botkit run`` one after the other in one channel, each on a fresh database (one
    recreated): both number the turn alike, and the second's placeholder is posted while Discord
    still remembers the first's nonce. The nonce mixes in the question's id, which the turn's
    row stores: the second turn gets a message of its own, and the first's answer is never
    edited. (With a nonce of turn and channel only, Discord handed the second turn's first post
    the first turn's message, which then showed the second answer.) The same turn across a
    restart keeps its nonce: ``test_a_placeholder_past_the_listings_bounds_is_handed_back_or_the_note_says_so[…-soon]``."""
    async with FakeDiscord() as fake, Standin(tokens_per_second=50) as standin:
        standin.script_reply(ANSWER)
        standin.script_reply("something else entirely")
        asker = fake.add_user("ada")
        first_db, second_db = tmp_path / "one.db", tmp_path / "two.db"
        one = await _answered_once(fake, tmp_path, _inline_env(fake, standin, first_db), first_db, asker)
        (first,) = _bot_messages(fake)
        two = await _answered_once(fake, tmp_path, _inline_env(fake, standin, second_db), second_db, asker)
    assert _turn_and_votes(first_db)[0] == _turn_and_votes(second_db)[0]  # the same turn id
    assert fake.versions_of(int(first["id"])) == ["_Thinking…_", ANSWER]  # never edited again
    (second,) = [m for m in _bot_messages(fake) if m["id"] != first["id"]]
    assert second["message_reference"]["message_id"] == two["id"]
    assert first["message_reference"]["message_id"] == one["id"]
    assert fake.versions_of(int(second["id"]))[-1] == "something else entirely"
    assert _assistant(second_db) == [("complete", "something else entirely")]
    assert _recorded_ids(second_db) == [second["id"]]
    nonces = _nonces(fake)
    assert len(nonces) == 2 and nonces[0] != nonces[1] and all(len(n) <= 25 for n in nonces)


# -- a turn an older botkit started ----------------------------------------------------------------
def _as_an_older_botkit_left_it(fake: FakeDiscord, database: Path, placeholder: dict[str, Any]) -> None:
    """The killed turn as a botkit older than the question in the nonce (and than tagged worker
    ids) leaves it: the row owned by a plain ``uuid4().hex`` worker id, and the placeholder
    created with the nonce of turn and channel only (``older_nonce``), which Discord remembers
    in place of the one this botkit posted it with."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE messages SET owner = ? WHERE owner IS NOT NULL", (uuid.uuid4().hex,))
        ((turn,),) = db.execute("SELECT id FROM messages WHERE status = 'streaming'")
    author = fake.bot_user["id"]
    (posted,) = [k for k, (m, _) in fake._nonces.items() if m == int(placeholder["id"])]
    fake._nonces[(author, older_nonce(turn, fake.channel_id))] = fake._nonces.pop(posted)


async def _killed_past_the_window(
    fake: FakeDiscord, standin: Standin, tmp_path: Path, database: Path
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """An inline mention SIGKILLed with its placeholder posted, never recorded, past
    ``discord.repair_window_seconds`` (only the nonce finds it): its environment, the stored
    checkpoint and the placeholder."""
    standin.script_reply(ANSWER)
    env = _inline_env(fake, standin, database)
    checkpoint = await _killed_while_the_placeholder_posts(fake, tmp_path, env, database, _inline_question())
    placeholder = _placeholder(fake, set())
    _accepted_an_hour_earlier(database)
    return env, checkpoint, placeholder


async def test_a_placeholder_an_older_botkit_posted_is_handed_back_by_its_older_nonce(tmp_path: Path) -> None:
    """An upgrade between a kill and its restart: the turn was started by a botkit whose first
    messages carried a nonce of turn and channel only (before the question was mixed in). Its
    placeholder (an inline mention's, its id never recorded) is past
    ``discord.repair_window_seconds``, so only the nonce finds it: the restart tells that turn
    (its row's owner is not a tagged worker id: ``botkit.leftovers.started_by_older``) by
    posting its note with the older nonce, Discord hands back the placeholder, and it is
    repaired in place: one message, versions "Thinking…" then the partial answer and the note.
    (With this botkit's nonce only, Discord created a note beside it and the placeholder stayed
    "Thinking…".)"""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        env, checkpoint, placeholder = await _killed_past_the_window(fake, standin, tmp_path, database)
        _as_an_older_botkit_left_it(fake, database, placeholder)
        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert _assistant(database) == [("interrupted", checkpoint)], log.decode()[-3000:]
    _assert_repaired_in_place(fake, placeholder, checkpoint, log)
    assert len(_bot_messages(fake)) == 1  # no note posted beside it
    # Tried first with the question nonce (botkit up to e265f4f's, its ids untagged too): that
    # post was a new message, deleted before the older nonce's post was handed the placeholder.
    deleted = [m["content"] for m in fake.deleted_messages.values()]
    assert deleted == [f"{checkpoint}\n\n{LEFTOVER_NOTE}\n\n{LOST_PLACEHOLDER_NOTE}"]
    nonces = _nonces(fake)
    assert nonces[-1] == older_nonce(_turn_and_votes(database)[0], fake.channel_id), nonces


def test_worker_ids_are_tagged_and_a_row_of_an_untagged_or_no_owner_is_an_older_botkits() -> None:
    """The column holds 32 characters; an older botkit's ids are 32 hex digits."""
    ids = {new_worker_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 32 and i.startswith(WORKER_TAG) for i in ids)
    assert not any(started_by_older(i) for i in ids)
    assert started_by_older(uuid.uuid4().hex) and started_by_older(None)


@pytest.mark.parametrize("where", ["thread", "slash-command"])
async def test_a_long_note_cut_between_its_messages_is_finished_in_the_killed_passs_words(
    tmp_path: Path, where: str
) -> None:
    """A kill between a long note's messages (as above): the note's first message is the same
    in both of its forms (with and without the sentence on an earlier reply still "Thinking…"),
    so the next pass cannot tell from it which form the killed pass posted. The killed pass
    spooled its form with the note's record (``SpooledNote.cut``), and the next pass finishes
    the note in those words: the whole note is exactly the killed pass's text, never ending
    with the sentence that pass left out. (Before: the next pass's own form, with the sentence,
    where its listing was cut.)"""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin() as standin:
        env, first, rest = await _killed_between_a_long_notes_messages(fake, standin, tmp_path, where)

        log = await _restart_until_settled(fake, tmp_path, env, database)
        note = sorted(_bot_messages(fake), key=lambda m: int(m["id"]))
    assert [m["content"] for m in note] == [first["content"], rest], log.decode()[-3000:]
    assert [fake.versions_of(int(m["id"])) for m in note] == [[m["content"]] for m in note]
    assert _assistant(database) == [("interrupted", LONG_PARTIAL)]


def _write_an_older_note_record(directory: Path, database: str, turn: int, where: tuple[str, ...]) -> None:
    """A note record as a botkit before ``SpooledNote.cut`` wrote it, beside turn 9's."""
    older = {"database": database, "turn": turn, "key": list(where), "at": 4.5}
    (path,) = directory.glob("note-*9.json")
    path.with_name(path.name.replace("9.json", f"{turn}.json")).write_text(
        json.dumps(older), encoding="utf-8"
    )


async def test_a_note_record_keeps_its_form_and_an_older_one_reads_as_unknown(tmp_path: Path) -> None:
    """``SpooledNote.cut`` round-trips through the spool; a record written before the field
    (no ``cut`` key) reads as None, and its pass's wording is then this pass's to choose."""
    spool = WriteSpool(tmp_path, "sqlite+aiosqlite:///x.db")
    where = ("discord", "1", "2", "3")
    await spool.notes.save(SpooledNote(7, where, 1.5, cut=True))
    await spool.notes.save(SpooledNote(8, where, 2.5, cut=False))
    await spool.notes.save(SpooledNote(9, where, 3.5))
    _write_an_older_note_record(tmp_path, spool.database, 10, where)
    assert sorted((n.turn, n.cut) for n in spool.notes.all()) == [
        (7, True),
        (8, False),
        (9, None),
        (10, None),
    ]


async def test_a_final_view_posted_anew_is_not_taken_for_another_turns_recorded_identical_answer(
    tmp_path: Path,
) -> None:
    """An inline mention whose placeholder Discord refused posts its final view anew (its
    intent says so: looked for by its text after its question); SIGKILL with that POST held,
    not applied, while another member's ``/ask`` in the same channel, after the mention, got
    the very same answer, complete and recorded. That message is the other turn's (its row
    holds its id: ``ConversationStore.recorded_elsewhere``), so the restart does not take it
    for the mention's: the mention's row is ``interrupted`` and its asker gets one note (the
    partial answer and what happened), the other turn's message is never edited, its row
    ``complete`` with its own id. (Before: the other turn's message stored as the mention's,
    ``complete``, and no note.)"""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        standin.script_reply(ANSWER)
        env = _inline_env(fake, standin, database)
        hold = fake.hold(
            "POST", rf"^/channels/{fake.channel_id}/messages$", apply=False, match=_answer_posted
        )

        async def ask() -> str:
            await fake.wait_until_connected(60)
            question = await _placeholder_refused(fake)
            slash = await fake.slash_command(fake.add_user("bob"), "ask", {"question": "a story"})
            await _until(lambda: [s for s, _ in _assistant(database)] == ["streaming", "complete"])
            return str(slash.original_id or question)

        other_id = await _sigkill_at(tmp_path, env, hold, ask)
        other = fake.messages[int(other_id)]
        assert other["content"] == ANSWER and int(other_id) > int(min(fake.messages))
        other_versions = fake.versions_of(int(other_id))
        log = await _restart_until_settled(fake, tmp_path, env, database)
    statuses = [s for s, _ in _assistant(database)]
    assert statuses == ["interrupted", "complete"], log.decode()[-3000:]
    assert fake.versions_of(int(other_id)) == other_versions  # never edited
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT platform_message_ids FROM messages WHERE role = 'assistant' ORDER BY id")
        stored = [json.loads(ids or "[]") for (ids,) in rows]
    assert stored[1] == [other_id] and other_id not in stored[0]
    (note,) = [m for m in _bot_messages(fake) if m["id"] != other_id]
    assert note["content"].endswith(LEFTOVER_NOTE) and fake.versions_of(int(note["id"])) == [note["content"]]


def _as_main_at_e265f4f_left_it(database: Path) -> None:
    """The killed turn as botkit between 783a50d and e265f4f leaves it: its first messages'
    nonce already mixes in the question (as this botkit's does), but its worker ids are plain
    ``uuid4().hex`` (not tagged): the row's owner is untagged, the placeholder's nonce is the
    one this botkit would give it."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE messages SET owner = ? WHERE owner IS NOT NULL", (uuid.uuid4().hex,))


@pytest.mark.parametrize("restart", ["soon", "later"])
async def test_a_placeholder_posted_by_main_at_e265f4f_is_handed_back_after_the_upgrade(
    tmp_path: Path, restart: str
) -> None:
    """An upgrade from main at e265f4f (question nonce, untagged worker ids) between a kill and
    its restart: the placeholder past ``discord.repair_window_seconds`` (only the nonce finds
    it). ``soon``: the note's first post carries the question nonce first, Discord hands back
    the placeholder, repaired in place: one message, versions "Thinking…" then the partial
    answer and the note, nothing deleted. (Taking every untagged row for the oldest botkit's
    posted the note with ``older_nonce`` only: Discord created it beside the placeholder,
    which stayed "Thinking…".) ``later`` (Discord forgot both nonces): the note's post with the
    question nonce is a new message, deleted, and the post made again with the older nonce:
    the asker sees one note (the sentence on a reply still "Thinking…" in it), the deleted
    one had the same text."""
    database = tmp_path / "botkit.db"
    async with FakeDiscord() as fake, Standin(tokens_per_second=15) as standin:
        env, checkpoint, placeholder = await _killed_past_the_window(fake, standin, tmp_path, database)
        _as_main_at_e265f4f_left_it(database)
        if restart == "later":
            fake.nonce_seconds = 0.0
        log = await _restart_until_settled(fake, tmp_path, env, database)
    assert _assistant(database) == [("interrupted", checkpoint)], log.decode()[-3000:]
    if restart == "soon":
        _assert_repaired_in_place(fake, placeholder, checkpoint, log)
        assert len(_bot_messages(fake)) == 1 and not fake.deleted_messages  # no note beside it
        return
    assert fake.versions_of(int(placeholder["id"])) == ["_Thinking…_"]  # not found
    (note,) = [m for m in _bot_messages(fake) if m["id"] != placeholder["id"]]
    assert note["content"] == f"{checkpoint}\n\n{LEFTOVER_NOTE}\n\n{LOST_PLACEHOLDER_NOTE}"
    assert [m["content"] for m in fake.deleted_messages.values()] == [note["content"]]
    assert _nonces(fake)[-1] == older_nonce(_turn_and_votes(database)[0], fake.channel_id)
