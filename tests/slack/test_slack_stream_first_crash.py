"""``streaming = "auto"``: SIGKILL while a first message streamed instead of posted
(:meth:`SlackReply.stream_first`) is on its way, then restart (``botkit run`` in a process of its
own against the fake Slack and the stand-in; what every message showed and what is stored)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from botkit_slack.markers import metadata
from botkit_slack.reply import fit_text, stream_markdown
from test_slack_crash_drills import _botkit_run, _env, _sigkill
from test_slack_crash_windows import (
    ANSWER,
    FORMATTED,
    _assistant,
    _every_version,
    _mention,
    _pending,
    _restart,
    _restart_and_vote,
    _votes,
)

from botkit.leftovers import LEFTOVER_NOTE
from botkit.markers import ReplyMarker
from botkit.testing import Standin
from botkit.testing.fake_slack import FakeSlack


def _second_turn(database: Path) -> int:
    with sqlite3.connect(database) as db:
        rows = list(db.execute("SELECT id FROM messages WHERE role = 'assistant' ORDER BY id"))
    return int(rows[1][0])


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
async def test_a_streamed_final_in_flight_then_restart(tmp_path: Path, applied: bool) -> None:
    """``progress = "status"``, one post per minute per channel: a first question's final takes
    the channel's post, so a second's there finds posts contended and goes out as
    ``chat.startStream`` with its whole Markdown; SIGKILL while that call is in flight. Applied:
    the stream shows the complete answer, open, unmarked, without buttons; the restart stores
    the turn complete, keeps its text and stops it with the final marker and 👍/👎 (a click is a
    stored vote). Not applied: only the status line shows; the restart posts one reply, the
    checkpoint and the note, stored interrupted."""
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        standin.script_reply(ANSWER)
        standin.script_reply(FORMATTED)
        env = _env(slack, standin, database) | {
            "BOTKIT_SLACK__STREAMING": "auto",
            "BOTKIT_SLACK__PROGRESS": "status",
            "BOTKIT_SLACK__POSTS_PER_MINUTE": "1",
            "BOTKIT_SLACK__POST_BURST": "1",
        }
        held = slack.hold("chat.startStream", apply=applied)
        process = await _botkit_run(tmp_path, env)
        try:
            first = await _mention(slack, "tell me a story")
            await slack.wait_for(lambda: [m.text for m in first()] == [ANSWER], 60)
            second = await _mention(slack, "tell me another")
            await asyncio.wait_for(held.reached.wait(), 60)
        finally:
            await _sigkill(process)
        channel, thread = held.args["channel"], held.args["thread_ts"]
        assert [status for status, _ in _assistant(database)] == ["complete", "streaming"]
        checkpoint = _assistant(database)[1][1]
        # The stream, where it was applied, is a message in the thread: it cleared the status.
        assert slack.statuses[(channel, thread)] == ["is thinking…", ""] if applied else ["is thinking…"]
        if applied:
            (stream,) = second()
            assert (stream.history, stream.metadata) == ([stream_markdown(FORMATTED)], None)
            assert stream.streaming
            assert not stream.buttons()
            log = await _restart_and_vote(
                tmp_path, slack, env, lambda: _assistant(database)[1][0] == "complete", lambda: second()[-1]
            )
        else:
            assert second() == []
            log = await _restart(tmp_path, slack, env, lambda: any("Interrupted" in m.text for m in second()))
        (message,) = second()
        turn = _second_turn(database)
        if applied:  # the stream, its text never edited, stopped with the marker and the buttons
            assert message.ts == stream.ts, log.decode()[-3000:]
            assert message.history == [stream_markdown(FORMATTED)] and not message.streaming
            assert message.metadata == metadata(ReplyMarker(turn, "final"))
            assert [b["value"] for b in message.buttons()] == [str(turn)] * 2
            assert _assistant(database)[1] == ("complete", FORMATTED)
            assert _votes(database) == [(turn, "U0ALICE", "up")]
            assert not any("Interrupted" in v for v in _every_version(slack, channel))
        else:  # one new reply: the partial answer and the note
            assert message.history == [fit_text(f"{checkpoint}\n\n{LEFTOVER_NOTE}")]
            assert _assistant(database)[1] == ("interrupted", checkpoint)
        assert _pending(tmp_path) == []
