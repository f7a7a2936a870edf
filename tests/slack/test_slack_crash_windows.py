"""The crash windows around a reply's messages, drilled with a real ``botkit run`` process: the
fake Slack holds one chosen call (applied first, or not), the process is SIGKILLed exactly
there, and a restarted one repairs what it left. Every version of every message in the thread
and every database row is checked: one final reply or one visible interruption, no complete
answer overwritten, no "Thinking…" left behind (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botkit_slack.adapter import HISTORY_MARGIN
from botkit_slack.markers import metadata
from botkit_slack.reply import fit_text, stream_markdown
from drills import stored_rows
from test_database_drills import restarted
from test_slack_crash_drills import _botkit_run, _env, _rows, _sigkill
from test_slack_native_stream import _earlier_thread

from botkit.leftovers import LEFTOVER_NOTE, UNANSWERED_NOTE
from botkit.markers import ReplyMarker
from botkit.testing import Standin
from botkit.testing.fake_slack import FakeSlack, Hold, SlackMessage
from botkit.testing.testbot import TestBot

pytestmark = pytest.mark.timeout(150)

ANSWER = " ".join(f"word{i}" for i in range(60))
THINKING = "_Thinking…_"


def _role(role: str) -> Callable[[Mapping[str, Any]], bool]:
    """A call whose reply marker (Slack metadata) has ``role``."""

    def match(args: Mapping[str, Any]) -> bool:
        metadata = args.get("metadata")
        payload = metadata.get("event_payload") if isinstance(metadata, Mapping) else None
        return isinstance(payload, Mapping) and payload.get("role") == role

    return match


def _assistant(database: Path) -> list[tuple[str, str]]:
    return [(status, content) for role, status, content in _rows(database) if role == "assistant"]


def _ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [
            r[0] for r in db.execute("SELECT platform_message_ids FROM messages WHERE role = 'assistant'")
        ]


def _final_marker(database: Path) -> dict[str, Any] | None:
    """The Slack metadata that marks a message as the final view of the (one) assistant turn."""
    with sqlite3.connect(database) as db:
        (turn,) = db.execute("SELECT id FROM messages WHERE role = 'assistant'").fetchone()
    return metadata(ReplyMarker(turn, "final"))


async def _until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling the database file and the fake
            await asyncio.sleep(0.05)


async def _mention(slack: FakeSlack, text: str) -> Callable[[], list[SlackMessage]]:
    await slack.wait_for_connections(1, timeout=60)
    root = slack.mention_event(text)
    await slack.push_event(root)
    channel, thread = str(root["channel"]), str(root["ts"])
    return lambda: slack.thread_replies(channel, thread)


async def _killed_at(
    tmp_path: Path, slack: FakeSlack, env: dict[str, str], held: Hold
) -> Callable[[], list[SlackMessage]]:
    """Run botkit, @mention it, SIGKILL it once ``held`` is reached; the thread's replies."""
    first = await _botkit_run(tmp_path, env)
    try:
        replies = await _mention(slack, "tell me a story")
        await asyncio.wait_for(held.reached.wait(), 60)
    finally:
        await _sigkill(first)
    assert first.returncode == -signal.SIGKILL
    return replies


async def _run_until(tmp_path: Path, env: dict[str, str], held: Hold) -> None:
    """Start botkit (its restart pass runs first) and SIGKILL it once ``held`` is reached."""
    process = await _botkit_run(tmp_path, env)
    try:
        await asyncio.wait_for(held.reached.wait(), 60)
    finally:
        await _sigkill(process)
    assert process.returncode == -signal.SIGKILL


async def _killed_at_the_final_edit(
    tmp_path: Path, slack: FakeSlack, standin: Standin, *, applied: bool
) -> tuple[dict[str, str], Callable[[], list[SlackMessage]]]:
    """A reply with no streaming edit before its final one (so "applied" and "not applied" look
    different), botkit SIGKILLed while that final ``chat.update`` is held; its env and replies."""
    standin.script_reply(ANSWER)
    env = _env(slack, standin, tmp_path / "botkit.db") | {
        "BOTKIT_STREAM__EDIT_INTERVAL": "30",
        "BOTKIT_STREAM__FIRST_TEXT_AT_ONCE": "false",
    }
    held = slack.hold("chat.update", apply=applied, match=_role("final"))
    return env, await _killed_at(tmp_path, slack, env, held)


async def _restart(tmp_path: Path, slack: FakeSlack, env: dict[str, str], done: Callable[[], bool]) -> bytes:
    """Start botkit again; the restart pass runs before its adapter connects (its Socket Mode
    WebSocket). Wait for it and for ``done``, then stop it; returns its log."""
    await slack.wait_for(lambda: not slack.sockets, 30)  # the killed process's socket is closed
    process = await _botkit_run(tmp_path, env)
    try:
        await slack.wait_for_connections(1, timeout=60)
        await _until(done, 30)
    finally:
        process.terminate()
        _, stderr = await process.communicate()
    return stderr


UP = "botkit_feedback_up"


async def _restart_and_vote(
    tmp_path: Path,
    slack: FakeSlack,
    env: dict[str, str],
    done: Callable[[], bool],
    reply: Callable[[], SlackMessage],
) -> bytes:
    """:func:`_restart`, and once ``done``, a click on the 👍 of ``reply()`` (which must show it)
    by U0ALICE, answered (her ephemeral thanks) before the process stops; its log."""
    await slack.wait_for(lambda: not slack.sockets, 30)
    process = await _botkit_run(tmp_path, env)
    try:
        await slack.wait_for_connections(1, timeout=60)
        await _until(done, 30)
        envelope = await slack.click_button(reply(), UP, user="U0ALICE")
        await slack.wait_for_ack(envelope["envelope_id"])
        await slack.wait_for(lambda: bool(slack.ephemerals), 30)
    finally:
        process.terminate()
        _, stderr = await process.communicate()
    return stderr


def _votes(database: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT message_id, voter, vote FROM feedback"))


def _assert_buttons_of_its_turn(database: Path, message: SlackMessage) -> None:
    """The message shows one row of 👍/👎 carrying its turn, is marked final, and a click on
    its 👍 was stored as U0ALICE's vote on that turn."""
    marker = _final_marker(database)
    assert marker is not None
    turn = marker["event_payload"]["turn"]
    assert [b["value"] for b in message.buttons()] == [str(turn)] * 2
    assert [b["type"] for b in message.blocks or []].count("actions") == 1
    assert message.metadata == marker
    assert _votes(database) == [(turn, "U0ALICE", "up")]


def _pending(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "botkit.db.pending").glob("*.json"))


def _every_version(slack: FakeSlack, channel: str) -> list[str]:
    return [v for m in [*slack.messages.values(), *slack.deleted] if m.channel == channel for v in m.history]


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
async def test_final_edit_in_flight_then_restart(tmp_path: Path, applied: bool) -> None:
    """SIGKILL while the final ``chat.update`` is in flight. ``applied`` (Slack took it, its
    response is not back): the user saw the complete answer; the restart reads it back, finds
    the spooled intent shown, stores the turn complete and never edits the message. Not applied:
    the platform does not show the intent, so the restart edits the message to its checkpointed
    partial answer and the interruption note, and stores it interrupted."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        env, replies = await _killed_at_the_final_edit(tmp_path, slack, standin, applied=applied)
        (message,) = replies()
        assert message.history == ([THINKING, ANSWER] if applied else [THINKING])
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming"  # the database knows less than the user saw
        assert checkpoint.startswith("word0") and checkpoint != ANSWER
        assert len(_pending(tmp_path)) == 1  # the intent, spooled before the request

        if applied:
            log = await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "complete")
        else:
            log = await _restart(tmp_path, slack, env, lambda: "Interrupted" in replies()[0].text)
    (message,) = replies()
    if applied:
        assert message.history == [THINKING, ANSWER], log.decode()[-3000:]  # never edited again
        assert message.buttons()  # the final edit that landed carried its 👍/👎
        assert _assistant(database) == [("complete", ANSWER)]
        assert _ids(database) == [f'["{message.ts}"]']
        assert not any("Interrupted" in v for v in _every_version(slack, message.channel))
    else:
        assert message.history == [THINKING, f"{checkpoint}\n\n{LEFTOVER_NOTE}"]
        assert _assistant(database) == [("interrupted", checkpoint)]
        assert ANSWER not in _every_version(slack, message.channel)
    assert _pending(tmp_path) == []


async def test_placeholder_posted_but_not_recorded_then_restart_repairs_it_in_place(tmp_path: Path) -> None:
    """SIGKILL while the placeholder's ``chat.postMessage`` is in flight (Slack posted it, its ts
    never came back, so no row holds it) and the answer streams into the turn: the restart finds
    the placeholder by its marker and edits it, rather than leave "Thinking…" forever (or post
    a second reply beside it)."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database)
        held = slack.hold("chat.postMessage", apply=True, match=_role("placeholder"))
        first = await _botkit_run(tmp_path, env)
        try:
            replies = await _mention(slack, "tell me a story")
            await asyncio.wait_for(held.reached.wait(), 60)
            await _until(lambda: [s for s, _ in _assistant(database)] == ["streaming"])
        finally:
            await _sigkill(first)
        (placeholder,) = replies()
        assert placeholder.history == [THINKING]
        assert _ids(database) == ["[]"]  # its ts was never stored
        checkpoint = _assistant(database)[0][1]

        await _restart(tmp_path, slack, env, lambda: "Interrupted" in replies()[0].text)
    (message,) = replies()  # the same message, no second reply
    note = f"{checkpoint}\n\n{LEFTOVER_NOTE}" if checkpoint else LEFTOVER_NOTE
    assert message.ts == placeholder.ts
    assert message.history == [THINKING, note]
    assert [s for s, _ in _assistant(database)] == ["interrupted"]


async def test_a_dms_placeholder_posted_but_not_recorded_is_found_in_its_history_at_restart(
    tmp_path: Path,
) -> None:
    """The same in a DM, whose replies are top-level messages and no thread to list: the
    restart reads the DM's history (``conversations.history`` with metadata, from shortly
    before the turn was accepted), finds the placeholder by its marker and edits it in place;
    the earlier exchange in the DM is left alone."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply("An earlier answer.")
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database)
        first = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for_connections(1, timeout=60)
            await slack.push_event(slack.message_event("hello there", channel="D0DM", channel_type="im"))
            await _until(lambda: [m.text for m in slack.bot_messages("D0DM")] == ["An earlier answer."])
            held = slack.hold("chat.postMessage", apply=True, match=_role("placeholder"))
            await slack.push_event(slack.message_event("tell me a story", channel="D0DM", channel_type="im"))
            await asyncio.wait_for(held.reached.wait(), 60)
            await _until(lambda: [s for s, _ in _assistant(database)] == ["complete", "streaming"])
        finally:
            await _sigkill(first)
        earlier, placeholder = slack.bot_messages("D0DM")
        assert placeholder.history == [THINKING]
        assert _ids(database)[1] == "[]"  # its ts was never stored
        checkpoint = _assistant(database)[1][1]

        await _restart(tmp_path, slack, env, lambda: "Interrupted" in slack.bot_messages("D0DM")[-1].text)
    note = f"{checkpoint}\n\n{LEFTOVER_NOTE}" if checkpoint else LEFTOVER_NOTE
    assert [m.ts for m in slack.bot_messages("D0DM")] == [earlier.ts, placeholder.ts]  # no second reply
    assert slack.bot_messages("D0DM")[1].history == [THINKING, note]
    assert slack.bot_messages("D0DM")[0].history == earlier.history  # never touched
    assert [s for s, _ in _assistant(database)] == ["complete", "interrupted"]
    # The DM is read from HISTORY_MARGIN before the lost turn was accepted, not whole.
    with sqlite3.connect(database) as db:
        accepted = db.execute(
            "SELECT created_at FROM messages WHERE role = 'assistant' ORDER BY id"
        ).fetchall()[1][0]
    accepted_at = datetime.fromisoformat(accepted).replace(tzinfo=UTC).timestamp()
    reads = [c for c in slack.calls if c.method == "conversations.history"]
    assert reads and all(
        float(c.args["oldest"]) == pytest.approx(accepted_at - HISTORY_MARGIN, abs=0.01) for c in reads
    )


def _budget_backed_up(slack: FakeSlack) -> None:
    """The first streaming edit earns a 429 with a minute's pause: the final text (and maybe a
    partial one before it) is posted anew and the message it replaced deleted."""
    slack.fail_with_429("chat.update", retry_after=60)


async def test_final_posted_anew_in_flight_then_restart_keeps_it_and_removes_the_replaced(
    tmp_path: Path,
) -> None:
    """SIGKILL while the final's ``chat.postMessage`` (posted anew, the edit budget paused) is in
    flight, Slack having posted it: the restart finds it by its marker, shown as intended,
    stores the turn complete with it and deletes the messages it replaced."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=30) as standin:
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database)
        _budget_backed_up(slack)
        replies = await _killed_at(
            tmp_path, slack, env, slack.hold("chat.postMessage", apply=True, match=_role("final"))
        )
        assert replies()[-1].history == [ANSWER]
        assert [s for s, _ in _assistant(database)] == ["streaming"]

        await _restart(tmp_path, slack, env, lambda: len(replies()) == 1)
    (message,) = replies()
    assert message.history == [ANSWER]  # one final reply, never edited
    assert _assistant(database) == [("complete", ANSWER)]
    assert _ids(database) == [f'["{message.ts}"]']
    assert slack.deleted  # the replaced placeholder (and any partial posted anew) are gone
    assert not any("Interrupted" in v for v in _every_version(slack, message.channel))


async def test_final_posted_anew_and_stored_before_the_delete_then_restart_removes_the_replaced(
    tmp_path: Path,
) -> None:
    """The final text posted anew and the turn stored, but SIGKILL while the replaced messages'
    ``chat.delete`` are held: the restart deletes them (the spool kept their ids)."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=30) as standin:
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database)
        _budget_backed_up(slack)
        holds = [slack.hold("chat.delete"), slack.hold("chat.delete")]
        first = await _botkit_run(tmp_path, env)
        try:
            replies = await _mention(slack, "tell me a story")
            await _until(lambda: _assistant(database) == [("complete", ANSWER)])
            await asyncio.wait_for(holds[0].reached.wait(), 30)
        finally:
            await _sigkill(first)
        before = replies()
        assert len(before) >= 2 and before[-1].history == [ANSWER]  # the final and what it replaced
        assert slack.deleted == []

        await _restart(tmp_path, slack, env, lambda: len(replies()) == 1)
    (message,) = replies()
    assert message.ts == before[-1].ts and message.history == [ANSWER]
    assert {m.ts for m in slack.deleted} == {m.ts for m in before[:-1]}
    assert _assistant(database) == [("complete", ANSWER)]
    assert not any("Interrupted" in v for v in _every_version(slack, message.channel))


async def test_an_accepted_messages_placeholder_found_by_its_marker_says_ask_again_in_place(
    tmp_path: Path,
) -> None:
    """Killed after the placeholder was posted but before any turn adopted the inbox row (no
    persona, no id stored): the restart finds the placeholder by its marker and edits it to say
    "ask again", instead of a second reply beside a "Thinking…" that stays forever."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with FakeSlack() as slack:
        root = slack.mention_event("a question")
        slack.record_user_message(root)
        channel, thread = str(root["channel"]), str(root["ts"])
        async with TestBot(tmp_path / "crashed", database_url=database) as crashed:
            ids = await crashed.store.accept(
                "slack", "EvINBOX1", (slack.team_id, channel, thread), user_text="a question", user_id="U1"
            )
        assert ids is not None
        ts = slack.next_ts()
        slack.messages[(channel, ts)] = SlackMessage(
            channel=channel, ts=ts, text=THINKING, user=slack.bot_user_id, bot_id=slack.bot_id,
            thread_ts=thread, history=[THINKING], metadata=metadata(ReplyMarker(ids.assistant_message_id)),
        )  # fmt: skip
        async with restarted(
            tmp_path / "next", database, "slack", slack.settings(), slack.wait_for_connections
        ):
            pass
    (message,) = slack.thread_replies(channel, thread)  # no second reply
    assert message.ts == ts and message.history == [THINKING, UNANSWERED_NOTE]
    rows = await stored_rows(database)
    assert [(r.role, r.status) for r in rows] == [("user", "complete"), ("assistant", "interrupted")]


async def test_a_second_kill_while_the_restart_reads_the_thread_leaves_the_turn_for_the_next_start(
    tmp_path: Path,
) -> None:
    """The final edit applied in flight (as above), then the restarted process SIGKILLed too,
    while its restart pass reads the thread back: the row stays unsettled and the intent
    spooled, so the third start still finds the complete answer shown and stores it complete."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        env, replies = await _killed_at_the_final_edit(tmp_path, slack, standin, applied=True)
        await slack.wait_for(lambda: not slack.sockets, 30)

        reading = slack.hold(
            "conversations.replies", match=lambda args: bool(args.get("include_all_metadata"))
        )
        second = await _botkit_run(tmp_path, env)
        try:
            await asyncio.wait_for(reading.reached.wait(), 60)
        finally:
            await _sigkill(second)
        assert second.returncode == -signal.SIGKILL
        assert [s for s, _ in _assistant(database)] == ["streaming"]  # not settled yet
        assert len(_pending(tmp_path)) == 1  # and its intent kept

        await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "complete")
    (message,) = replies()
    assert message.history == [THINKING, ANSWER]
    assert _assistant(database) == [("complete", ANSWER)]
    assert _pending(tmp_path) == []


async def test_a_status_line_turns_final_posted_in_flight_then_restart_keeps_it_and_posts_nothing(
    tmp_path: Path,
) -> None:
    """A reply shown as a status line (``[slack] progress = "status"``: no placeholder message)
    whose final is its first message: SIGKILL while that ``chat.postMessage`` is in flight,
    Slack having posted it. No id was stored, so without its marker the restart would post an
    interruption note beside the complete answer; it finds the answer, stores it complete and
    posts nothing."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=30) as standin:
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database) | {"BOTKIT_SLACK__PROGRESS": "status"}
        held = slack.hold("chat.postMessage", apply=True, match=_role("final"))
        replies = await _killed_at(tmp_path, slack, env, held)
        (message,) = replies()
        assert message.history == [ANSWER]
        assert _ids(database) == ["[]"]

        await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "complete")
    (message,) = replies()  # no second reply
    assert message.history == [ANSWER]
    assert _assistant(database) == [("complete", ANSWER)]
    assert _ids(database) == [f'["{message.ts}"]']


def _repairing(args: Mapping[str, Any]) -> bool:
    """The restart pass's ``chat.update`` (the interruption note; it carries no marker)."""
    return "Interrupted: botkit" in str(args.get("text") or "")


async def _killed_while_streaming(
    tmp_path: Path, slack: FakeSlack, standin: Standin
) -> tuple[dict[str, str], Callable[[], list[SlackMessage]]]:
    """botkit SIGKILLed while a reply streams (its placeholder recorded, a checkpoint stored, no
    streaming edit yet, the final view not reached: no intent); its env and replies."""
    database = tmp_path / "botkit.db"
    standin.script_reply(ANSWER)
    env = _env(slack, standin, database) | {
        "BOTKIT_STREAM__EDIT_INTERVAL": "30",
        "BOTKIT_STREAM__FIRST_TEXT_AT_ONCE": "false",
    }
    first = await _botkit_run(tmp_path, env)
    try:
        replies = await _mention(slack, "tell me a story")
        await _until(lambda: [(s, bool(c)) for s, c in _assistant(database)] == [("streaming", True)])
        await _until(lambda: _ids(database) != ["[]"])
    finally:
        await _sigkill(first)
    assert first.returncode == -signal.SIGKILL
    return env, replies


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
@pytest.mark.parametrize("first_kill", ["streaming", "final-edit"])
async def test_a_second_kill_between_the_repair_and_the_settle_leaves_the_turn_for_the_next_start(
    tmp_path: Path, first_kill: str, applied: bool
) -> None:
    """The first process SIGKILLed while its reply streams (no intent) or while its final edit
    is in flight, not applied (an intent that the platform does not show); the restarted one
    SIGKILLed while its repair ``chat.update`` is in flight, applied (Slack shows the note, the
    response is not back) or not (the message as it was). The row is still unfinished then (it
    is settled only once the message says so), so the third start repairs it: the note shown
    exactly once in the message's history, whichever pass landed it; the row ``interrupted``
    with its checkpointed partial answer; nothing left in the spool."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        if first_kill == "streaming":
            env, replies = await _killed_while_streaming(tmp_path, slack, standin)
        else:
            env, replies = await _killed_at_the_final_edit(tmp_path, slack, standin, applied=False)
            assert len(_pending(tmp_path)) == 1  # its intent
        (message,) = replies()
        assert message.history == [THINKING]
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming" and checkpoint.startswith("word0") and checkpoint != ANSWER
        note = f"{checkpoint}\n\n{LEFTOVER_NOTE}"
        await slack.wait_for(lambda: not slack.sockets, 30)

        await _run_until(tmp_path, env, slack.hold("chat.update", apply=applied, match=_repairing))
        assert replies()[0].history == ([THINKING, note] if applied else [THINKING])
        # Not settled before the message says so: left for the next start (the old order stored
        # it interrupted here, and a message that was not edited stayed "Thinking…" for good).
        assert _assistant(database) == [("streaming", checkpoint)]
        assert len(_pending(tmp_path)) == (0 if first_kill == "streaming" else 1)

        log = await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "interrupted")
    (message,) = replies()  # the same message, no second reply
    assert message.history == [THINKING, note], log.decode()[-3000:]  # the note once, never again
    assert _assistant(database) == [("interrupted", checkpoint)]
    assert _ids(database) == [f'["{message.ts}"]']
    assert _pending(tmp_path) == []


async def test_a_second_kill_after_the_restart_told_the_asker_leaves_one_note(tmp_path: Path) -> None:
    """An accepted message no turn adopted (no placeholder: the asker is told in a new reply),
    the restart SIGKILLed once Slack posted that note (its response not back, the row not
    settled): the third start finds the note by its marker and leaves it, stores the row
    interrupted and posts no second note."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin() as standin:
        root = slack.mention_event("a question")
        slack.record_user_message(root)
        channel, thread = str(root["channel"]), str(root["ts"])
        async with TestBot(tmp_path / "crashed", database_url=f"sqlite+aiosqlite:///{database}") as crashed:
            ids = await crashed.store.accept(
                "slack", "EvINBOX1", (slack.team_id, channel, thread), user_text="a question", user_id="U1"
            )
        assert ids is not None
        env = _env(slack, standin, database)

        await _run_until(tmp_path, env, slack.hold("chat.postMessage", apply=True, match=_repairing))
        (note,) = slack.thread_replies(channel, thread)
        assert note.history == [UNANSWERED_NOTE]
        assert [s for s, _ in _assistant(database)] == ["queued"]  # not settled yet

        await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "interrupted")
    (message,) = slack.thread_replies(channel, thread)  # no second note
    assert message.ts == note.ts and message.history == [UNANSWERED_NOTE]
    assert [s for s, _ in _assistant(database)] == ["interrupted"]


def _assert_stream_repaired(
    tmp_path: Path, slack: FakeSlack, message: SlackMessage, stream: str, placeholder: str, checkpoint: str
) -> None:
    """The turn's one message is its stream, stopped, showing the checkpointed partial answer
    and the note, and marked as the turn's final view (so no later turn's restart takes it for
    its own stream); the placeholder it replaced deleted; the row interrupted, the spool empty."""
    note = f"{checkpoint}\n\n{LEFTOVER_NOTE}" if checkpoint else LEFTOVER_NOTE
    assert message.ts == stream and not message.streaming
    assert message.metadata == _final_marker(tmp_path / "botkit.db")
    assert message.text == note and message.history[-1] == note
    assert [m.ts for m in slack.deleted] == [placeholder]
    assert _assistant(tmp_path / "botkit.db") == [("interrupted", checkpoint)]
    assert _pending(tmp_path) == []


async def test_a_native_stream_started_but_not_recorded_then_restart_repairs_it_in_place(
    tmp_path: Path,
) -> None:
    """``slack.streaming = "native"``: SIGKILL while ``chat.startStream`` is in flight (Slack
    started the stream, its ts never came back, the placeholder not deleted yet). The stream
    carries no marker (``chat.startStream`` takes none) and was never stopped, so the restart
    finds it in the thread as the turn's unmarked message after its placeholder, stops it
    (an unstopped stream refuses ``chat.update``) and shows the checkpointed partial answer and
    the note there; the placeholder goes. One message, no "Thinking…", no stream left open."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database) | {"BOTKIT_SLACK__STREAMING": "native"}
        held = slack.hold("chat.startStream", apply=True)
        replies = await _killed_at(tmp_path, slack, env, held)
        placeholder, stream = replies()
        assert placeholder.history == [THINKING]
        assert stream.streaming and stream.text.startswith("word0") and stream.metadata is None
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming"

        await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "interrupted")
    assert [m.ts for m in replies()] == [stream.ts], [m.history for m in replies()]
    (message,) = replies()  # the stream, repaired in place; the placeholder deleted
    _assert_stream_repaired(tmp_path, slack, message, stream.ts, placeholder.ts, checkpoint)


async def test_a_native_stream_killed_after_its_placeholder_went_is_repaired_in_place(
    tmp_path: Path,
) -> None:
    """``slack.streaming = "native"``: SIGKILL while a ``chat.appendStream`` is in flight, the
    placeholder already deleted (the stream replaced it) and the stream never stopped, so no
    message of the turn carries its marker and the recorded id is gone. The restart takes the
    last unmarked, file-less message of the bot in the thread from the turn's acceptance on as
    its stream, stops it and shows the checkpointed partial answer and the note there. The
    thread's earlier replies (a finished, marked stream; unmarked ones a restart repaired, long
    ago and just before) are left as they were. One message for the turn, no stream left open."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        env = _env(slack, standin, database) | {"BOTKIT_SLACK__STREAMING": "native"}
        held = slack.hold("chat.appendStream", apply=True)
        first = await _botkit_run(tmp_path, env)
        try:
            await slack.wait_for_connections(1, timeout=60)
            key, earlier = _earlier_thread(slack)  # the thread's replies so far: see there
            channel, thread = key.channel, key.thread
            await slack.push_event(slack.mention_event("tell me a story", channel=channel, thread_ts=thread))
            await asyncio.wait_for(held.reached.wait(), 60)
        finally:
            await _sigkill(first)
        before = {m.ts: (list(m.history), m.metadata) for m in earlier}
        (stream,) = [m for m in slack.thread_replies(channel, thread) if m.ts not in before]
        assert stream.streaming and stream.text.startswith("word0") and stream.metadata is None
        (placeholder,) = slack.deleted
        assert placeholder.history == [THINKING]
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming"

        await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "interrupted")
    replies = slack.thread_replies(channel, thread)
    assert {m.ts: (m.history, m.metadata) for m in replies if m.ts in before} == before
    (message,) = [m for m in replies if m.ts not in before]  # the stream, repaired in place
    _assert_stream_repaired(tmp_path, slack, message, stream.ts, placeholder.ts, checkpoint)


#: An answer whose Markdown and mrkdwn differ (bold, ``&``, ``<``, a heading, a link).
FORMATTED = (
    "## Result\n\nHere is **the answer** & a <b> tag, see [the docs](https://example.com/d):\n\n" + ANSWER
)


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
async def test_a_native_final_view_in_flight_then_restart(tmp_path: Path, applied: bool) -> None:
    """``slack.streaming = "native"``, an answer with formatting and no streaming edit before
    the final view, so the final view goes out as the stream itself (``chat.startStream`` with
    its Markdown, then the placeholder deleted and ``chat.stopStream``): SIGKILL while that
    ``chat.startStream`` is in flight. Applied: the stream shows the complete answer as
    Markdown, its ``text`` read back is that Markdown, which is what the spooled intent says
    (``SlackReply.rendered_view``), so the restart stores the turn complete and never edits the
    stream's text; the stream was never stopped, so it has no 👍/👎 yet: the restart stops it
    with them (``chat.stopStream`` with the actions block and the final marker), and a click on
    them is a stored vote. Not applied: only "Thinking…" is shown; the restart edits the
    placeholder to the checkpointed partial answer and the note, and stores it interrupted."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(FORMATTED)
        env = _env(slack, standin, database) | {
            "BOTKIT_SLACK__STREAMING": "native",
            "BOTKIT_STREAM__EDIT_INTERVAL": "30",
            "BOTKIT_STREAM__FIRST_TEXT_AT_ONCE": "false",
        }
        held = slack.hold("chat.startStream", apply=applied)
        replies = await _killed_at(tmp_path, slack, env, held)
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming" and checkpoint != FORMATTED
        assert len(_pending(tmp_path)) == 1  # the intent, spooled before the request
        placeholder, *stream = replies()
        assert placeholder.history == [THINKING]
        if applied:
            assert [(m.history, m.streaming) for m in stream] == [([stream_markdown(FORMATTED)], True)]
            assert not stream[0].buttons()
            log = await _restart_and_vote(
                tmp_path, slack, env, lambda: _assistant(database)[0][0] == "complete", lambda: replies()[-1]
            )
        else:
            assert stream == []
            log = await _restart(tmp_path, slack, env, lambda: "Interrupted" in replies()[0].text)
    (message,) = replies()
    if applied:  # the stream, its text never edited; the placeholder it replaced deleted
        assert message.ts == stream[0].ts, log.decode()[-3000:]
        assert message.history == [stream_markdown(FORMATTED)] and not message.streaming
        assert [m.ts for m in slack.deleted] == [placeholder.ts]
        assert _assistant(database) == [("complete", FORMATTED)]
        _assert_buttons_of_its_turn(database, message)
        assert not any("Interrupted" in v for v in _every_version(slack, message.channel))
    else:  # the placeholder, showing the partial answer and the note
        assert message.ts == placeholder.ts
        assert message.history == [THINKING, fit_text(f"{checkpoint}\n\n{LEFTOVER_NOTE}")]
        assert _assistant(database) == [("interrupted", checkpoint)]
        assert not any("word59" in v for v in _every_version(slack, message.channel))
    assert _pending(tmp_path) == []


@pytest.mark.parametrize("case", ["applied", "not-applied", "ended", "expired"])
async def test_a_native_streams_final_stop_in_flight_then_restart_keeps_the_answer(
    tmp_path: Path, case: str
) -> None:
    """``slack.streaming = "native"``, an answer with formatting streamed into an open stream
    (edits at the default cadence): the final view appends the rest of its Markdown, then
    ``chat.stopStream`` carries the buttons and the final marker; SIGKILL while that stop is in
    flight, applied or not. Either way the stream shows the complete answer (as Markdown): the
    restart stores the turn complete and never changes its text (no note in any version). Not
    applied, the stream was never stopped: the restart stops it with the turn's final marker
    and the 👍/👎 (its text as it is), so it does not stream on, unmarked, for a later turn to
    take. ``ended`` (the asker stopped the stream) and ``expired`` (Slack ended it): not applied,
    and the stream no longer streams at the restart, so its stop is refused and a
    ``chat.update`` marks it, re-sending its Markdown as it shows in a ``markdown`` block with
    the buttons under it (``markdown_text`` takes no blocks). Applied, the stop carried the
    buttons and nothing more is sent; otherwise the restart gives them, once, and a click on
    them is a stored vote."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(FORMATTED)
        env = _env(slack, standin, database) | {"BOTKIT_SLACK__STREAMING": "native"}
        held = slack.hold("chat.stopStream", apply=case == "applied", match=_role("final"))
        replies = await _killed_at(tmp_path, slack, env, held)
        (stream,) = replies()
        assert len(stream.appended) > 1  # it streamed before the final view
        assert stream.text == stream_markdown(FORMATTED) and stream.streaming is (case != "applied")
        assert _assistant(database)[0][0] == "streaming"
        assert bool(stream.buttons()) is (case == "applied")
        if case == "ended":
            slack.stop_by_user_before("chat.stopStream")
        elif case == "expired":
            slack.expire_stream(stream.channel, stream.ts)
        shown, blocks, stops = list(stream.history), len(stream.blocks_history), len(slack.calls)

        def done() -> bool:
            return _assistant(database)[0][0] != "streaming"

        log = await _restart_and_vote(tmp_path, slack, env, done, lambda: replies()[0])
    (message,) = replies()
    ended = case in ("ended", "expired")
    assert message.ts == stream.ts and message.text == shown[-1], log.decode()[-3000:]
    assert message.history == shown + ([shown[-1]] if ended else [])  # re-sent as is
    assert not message.streaming and message.metadata == _final_marker(database)
    assert len(message.blocks_history) == blocks + (case != "applied")  # the buttons, once
    _assert_buttons_of_its_turn(database, message)
    restart = [
        (c.method, c.error)
        for c in slack.calls[stops:]
        if c.method.startswith("chat.") and c.method != "chat.postEphemeral"
    ]
    if ended:  # the stop refused, then one update: the Markdown as it shows, the buttons under it
        refusal = "stopped_by_user" if case == "ended" else "message_not_in_streaming_state"
        assert restart == [("chat.stopStream", refusal), ("chat.update", None)]
        assert message.blocks == [{"type": "markdown", "text": shown[-1]}, message.blocks[-1]]
    else:
        assert restart == ([] if case == "applied" else [("chat.stopStream", None)])
    assert _assistant(database) == [("complete", FORMATTED)]
    assert not any("Interrupted" in v for v in _every_version(slack, message.channel))
    assert _pending(tmp_path) == []


@pytest.mark.parametrize("refused", ["chat.startStream", "chat.stopStream"])
async def test_a_native_final_view_that_fell_back_to_chat_update_in_flight_then_restart_keeps_it(
    tmp_path: Path, refused: str
) -> None:
    """``slack.streaming = "native"``: Slack refuses a stream call of the final view after its
    intent was spooled (as the stream's Markdown): ``chat.startStream`` (no streaming edit
    before: the reply goes on with ``chat.update`` on its placeholder), or the final
    ``chat.stopStream`` (the asker stopped the stream just before it: ``chat.update`` re-sends
    the answer with the marker and the buttons). SIGKILL while that final ``chat.update`` is in
    flight, applied: the message shows the complete answer in mrkdwn, the other form the intent
    records (``SlackReply.rendered_views``), so the restart stores the turn complete and never
    edits it (no note over the complete answer)."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(FORMATTED)
        env = _env(slack, standin, database) | {"BOTKIT_SLACK__STREAMING": "native"}
        if refused == "chat.startStream":
            slack.fail_with_error("chat.startStream", "channel_type_not_supported")
            env["BOTKIT_STREAM__EDIT_INTERVAL"] = "30"
        else:
            slack.stop_by_user_before("chat.stopStream")
        held = slack.hold("chat.update", apply=True, match=_role("final"))
        replies = await _killed_at(tmp_path, slack, env, held)
        (message,) = replies()  # the placeholder, or the stream that replaced it
        assert message.text == fit_text(FORMATTED) and message.metadata == _final_marker(database)
        assert [c.error for c in slack.calls_of(refused)] == [
            "channel_type_not_supported" if refused == "chat.startStream" else "stopped_by_user"
        ]
        assert _assistant(database)[0][0] == "streaming"
        assert len(_pending(tmp_path)) == 1  # the intent
        shown = list(message.history)
        log = await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] != "streaming")
    (after,) = replies()
    assert after.ts == message.ts and after.history == shown, log.decode()[-3000:]
    assert _assistant(database) == [("complete", FORMATTED)]
    assert not any("Interrupted" in v for v in _every_version(slack, message.channel))
    assert _pending(tmp_path) == []


def _rows_with_ids(database: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(database) as db:
        return list(db.execute("SELECT id, status FROM messages WHERE role = 'assistant' ORDER BY id"))


def _refused_marking(stream: SlackMessage) -> Callable[[Mapping[str, Any]], bool]:
    """The ``chat.update`` that marks ``stream`` (its ts, a final marker)."""
    return lambda args: args.get("ts") == stream.ts and _role("final")(args)


async def _a_stream_left_unmarked(
    tmp_path: Path, slack: FakeSlack, standin: Standin, env: dict[str, str]
) -> tuple[Callable[[], list[SlackMessage]], SlackMessage]:
    """botkit runs; a turn streams its whole answer, and Slack refuses both its final
    ``chat.stopStream`` (the asker stopped the stream) and the ``chat.update`` that would mark
    it; then a second question in that thread, SIGKILLed while streaming before any message of
    its own (its placeholder's post held, not applied). The thread's replies and that stream."""
    standin.script_reply(FORMATTED)
    standin.script_reply(ANSWER)
    slack.stop_by_user_before("chat.stopStream")
    slack.fail_with_error("chat.update", "cant_update_message", match=lambda a: _role("final")(a))
    first = await _botkit_run(tmp_path, env)
    try:
        replies = await _mention(slack, "tell me a story")
        await _until(lambda: [r for _, r in _rows_with_ids(tmp_path / "botkit.db")] == ["complete"])
        (stream,) = replies()
        held = slack.hold("chat.postMessage", match=_role("placeholder"))
        root = slack.thread_replies(stream.channel, stream.thread_ts or "")
        await slack.push_event(
            slack.mention_event("and another", channel=stream.channel, thread_ts=root[0].thread_ts)
        )
        await asyncio.wait_for(held.reached.wait(), 60)
        await _until(
            lambda: [r for _, r in _rows_with_ids(tmp_path / "botkit.db")] == ["complete", "streaming"]
        )
    finally:
        await _sigkill(first)
    return replies, stream


async def test_a_stream_slack_refused_to_stop_and_to_mark_is_marked_later_and_no_later_turn_takes_it(
    tmp_path: Path,
) -> None:
    """``slack.streaming = "native"``: Slack refuses a finished stream's ``chat.stopStream``
    (``stopped_by_user``) and then the ``chat.update`` that marks it (``cant_update_message``),
    so it shows the complete answer without the turn's marker. botkit records it durably (the
    spool's ``unmarked-*.json``). A later turn in that thread is killed while streaming before
    any message of its own: its restart must not take that answer for its stream (the last
    unmarked message of the thread) and overwrite it with its note; it says so in a new reply.
    The restart marks the recorded stream (its Markdown as it shows, the turn's final marker)
    and drops the record. Calls counted; every version of every message and the rows checked."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        env = _env(slack, standin, database) | {"BOTKIT_SLACK__STREAMING": "native"}
        replies, stream = await _a_stream_left_unmarked(tmp_path, slack, standin, env)
        assert stream.text == stream_markdown(FORMATTED) and not stream.streaming
        assert stream.metadata is None and not stream.buttons()
        assert [p.name.split("-")[0] for p in _pending(tmp_path)] == ["unmarked"]  # the record
        (first_turn, _), (second_turn, _) = _rows_with_ids(database)
        answer = list(stream.history)
        stops = [c.error for c in slack.calls_of("chat.stopStream")]
        markings = [c.error for c in slack.calls_of("chat.update") if _refused_marking(stream)(c.args)]
        assert (stops, markings) == (["stopped_by_user"], ["cant_update_message"])

        def done() -> bool:
            return _rows_with_ids(database)[-1][1] != "streaming" and bool(replies()[0].buttons())

        log = await _restart_and_vote(tmp_path, slack, env, done, lambda: replies()[0])
        await _until(lambda: not _pending(tmp_path), 10)
    (marked, note) = replies()
    assert marked.ts == stream.ts, log.decode()[-3000:]
    assert marked.history == [*answer, answer[-1]]  # re-sent as it shows, never the note
    assert marked.metadata == metadata(ReplyMarker(first_turn, "final")) and not marked.streaming
    # The 👍/👎 the refused marking carried, given by the later marking: one row, a click a vote.
    assert [b["value"] for b in marked.buttons()] == [str(first_turn)] * 2
    assert [b["type"] for b in marked.blocks or []] == ["markdown", "actions"]
    assert _votes(database) == [(first_turn, "U0ALICE", "up")]
    assert [c.error for c in slack.calls_of("chat.stopStream")] == ["stopped_by_user"] * 2
    assert [c.error for c in slack.calls_of("chat.update") if _refused_marking(stream)(c.args)] == [
        "cant_update_message",
        None,
    ]
    # The second turn had no text checkpointed (no message to show it in): "ask again".
    assert note.history == [UNANSWERED_NOTE]
    assert note.metadata == metadata(ReplyMarker(second_turn, "final"))
    assert [m.history for m in slack.deleted] == [[THINKING]]  # the first turn's placeholder
    assert [v for v in _every_version(slack, stream.channel) if "Interrupted" in v] == [UNANSWERED_NOTE]
    assert _assistant(database) == [("complete", FORMATTED), ("interrupted", "")]
    assert _pending(tmp_path) == []


def _heartbeat(database: Path) -> str | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT max(heartbeat_at) FROM workers").fetchone()
    return None if row is None else str(row[0])


async def _beats(database: Path, count: int) -> None:
    """Wait for ``count`` more heartbeats of the running process: as many sweeps ran meanwhile
    (both come every ``database.heartbeat_interval``)."""
    seen = [_heartbeat(database)]
    while len(seen) <= count:
        await _until(lambda: _heartbeat(database) != seen[-1], 30)
        seen.append(_heartbeat(database))


@pytest.mark.parametrize("sweep", ["marks", "refused"])
async def test_a_stream_slack_refused_to_mark_is_marked_by_the_next_sweep_asked_once(
    tmp_path: Path, sweep: str
) -> None:
    """``slack.streaming = "native"``, a running ``botkit run`` (no restart): Slack refuses a
    finished stream's ``chat.stopStream`` and its marking ``chat.update``; the stream is
    recorded, and the process's next sweep (``database.heartbeat_interval``) marks it with the
    turn's final marker, its text re-sent as it shows, the record dropped. ``refused``: Slack
    refuses that marking too; the record stays (no other turn takes the stream) and later
    sweeps do not ask again: two marking calls in all, counted over several sweeps."""
    database = tmp_path / "botkit.db"
    sweeping = {"BOTKIT_SLACK__STREAMING": "native", "BOTKIT_DATABASE__HEARTBEAT_INTERVAL": "0.3"}
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        env = _env(slack, standin, database) | sweeping
        standin.script_reply(FORMATTED)
        slack.stop_by_user_before("chat.stopStream")
        refusals = 1 if sweep == "marks" else 2
        slack.fail_with_error("chat.update", "cant_update_message", count=refusals, match=_role("final"))
        process = await _botkit_run(tmp_path, env)
        try:
            replies = await _mention(slack, "tell me a story")
            await _until(lambda: [r for _, r in _rows_with_ids(database)] == ["complete"])
            (stream,) = replies()
            markings = _refused_marking(stream)
            await _until(lambda: len([c for c in slack.calls_of("chat.update") if markings(c.args)]) == 2)
            await _beats(database, 4)
            if sweep == "marks":  # the 👍/👎 the refused marking carried, given by the sweep's
                envelope = await slack.click_button(replies()[0], UP, user="U0ALICE")
                await slack.wait_for_ack(envelope["envelope_id"])
                await slack.wait_for(lambda: bool(slack.ephemerals), 30)
        finally:
            process.terminate()
            await process.communicate()
    ((turn, _),) = _rows_with_ids(database)
    errors = [c.error for c in slack.calls_of("chat.update") if markings(c.args)]
    assert [c.error for c in slack.calls_of("chat.stopStream")] == ["stopped_by_user"] * 2
    (message,) = replies()
    if sweep == "marks":
        assert errors == ["cant_update_message", None]
        assert message.metadata == metadata(ReplyMarker(turn, "final"))
        assert message.history[-1] == message.history[-2] == stream_markdown(FORMATTED)
        assert [b["value"] for b in message.buttons()] == [str(turn)] * 2
        assert [b["type"] for b in message.blocks or []] == ["markdown", "actions"]
        assert _votes(database) == [(turn, "U0ALICE", "up")]
        assert _pending(tmp_path) == []
    else:
        assert errors == ["cant_update_message"] * 2
        assert message.metadata is None and message.text == stream_markdown(FORMATTED)
        assert [p.name.split("-")[0] for p in _pending(tmp_path)] == ["unmarked"]
    assert _assistant(database) == [("complete", FORMATTED)]
