"""The pieces of the crash-window repair that need no platform: reply markers on Slack's
metadata, matching a final view's intent with what a platform shows, and the spool's records of
intents and replaced messages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from botkit_slack.markers import marker_of, metadata

from botkit.markers import ReplyMarker, ShownMessage
from botkit.repair import final_view
from botkit.store.spool import SpooledWrite, WriteSpool

KEY = ("slack", "T1", "C1", "1.0")


def test_a_slack_marker_reads_back_as_it_was_written_and_nothing_else_is_one() -> None:
    marker = ReplyMarker(42, "final")
    assert marker_of({"metadata": metadata(marker)}) == marker
    assert metadata(None) is None
    for message in (
        {},
        {"metadata": {"event_type": "other", "event_payload": {"turn": 42, "role": "final"}}},
        {"metadata": {"event_type": "botkit_reply", "event_payload": {"turn": "42", "role": "final"}}},
        {"metadata": {"event_type": "botkit_reply", "event_payload": {"turn": True, "role": "final"}}},
        {"metadata": {"event_type": "botkit_reply", "event_payload": {"turn": 42, "role": "done"}}},
    ):
        assert marker_of(message) is None, message


def test_the_final_view_is_the_turns_last_messages_showing_the_intent_in_order() -> None:
    placeholder, first, second = (
        ShownMessage("1", "_Thinking…_"),
        ShownMessage("2", "a"),
        ShownMessage("3", "b"),
    )
    assert final_view([placeholder, first, second], ["a", "b"]) == [first, second]
    assert final_view([first], ["a"]) == [first]
    assert final_view([first, second], ["b", "a"]) is None  # not in that order
    assert final_view([placeholder], ["a"]) is None  # the final edit was not applied
    assert final_view([first], ["a", "b"]) is None  # a continuation is missing
    assert final_view([first], []) is None


async def test_the_spool_keeps_an_intent_until_the_final_write_replaces_it(tmp_path: Path) -> None:
    spool = WriteSpool(tmp_path, "sqlite+aiosqlite:///x.db")
    await spool.save(SpooledWrite(7, KEY, {"status": "complete", "answer": "a"}, ("a",)))
    assert spool.entries() == [SpooledWrite(7, KEY, {"status": "complete", "answer": "a"}, ("a",))]
    await spool.save(SpooledWrite(7, KEY, {"status": "complete", "answer": "a"}))  # shown: the write
    assert [e.shown for e in spool.entries()] == [None]
    await spool.discard(7)
    assert spool.entries() == []


async def test_an_intents_other_forms_are_kept_with_it(tmp_path: Path) -> None:
    """A view that may show in another form (Slack: the stream's Markdown, or mrkdwn after a
    refused stream call) is spooled with both, read back in order; a record without them (an
    older botkit's) reads back with none."""
    spool = WriteSpool(tmp_path, "sqlite+aiosqlite:///x.db")
    intent = SpooledWrite(7, KEY, {"status": "complete"}, ("**a**", "b"), (("*a*", "b"),))
    await spool.save(intent)
    (read,) = spool.entries()
    assert read == intent and read.views == (("**a**", "b"), ("*a*", "b"))
    await spool.save(SpooledWrite(8, KEY, {"status": "complete"}, ("a",)))
    assert [e.views for e in spool.entries()] == [(("**a**", "b"), ("*a*", "b")), (("a",),)]


def _drop_field(directory: Path, pattern: str, name: str) -> None:
    """Rewrite the spooled record ``pattern`` without ``name`` (as an older botkit wrote it)."""
    (path,) = directory.glob(pattern)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record.pop(name) is False
    path.write_text(json.dumps(record), encoding="utf-8")


async def test_an_intent_says_whether_its_first_message_is_anew_and_an_older_one_reads_as_anew(
    tmp_path: Path,
) -> None:
    """``anew`` is spooled either way (False: a plain final edit of a recorded message, which
    the restart never looks for by its text); a record written before the field existed reads
    back as ``anew``, as the botkit that wrote it treated every intent."""
    spool = WriteSpool(tmp_path, "sqlite+aiosqlite:///x.db")
    edited = SpooledWrite(7, KEY, {"status": "complete"}, ("a",), anew=False)
    await spool.save(edited)
    await spool.save(SpooledWrite(8, KEY, {"status": "complete"}, ("a",), anew=True))
    assert spool.entries() == [edited, SpooledWrite(8, KEY, {"status": "complete"}, ("a",), anew=True)]
    await asyncio.to_thread(_drop_field, tmp_path, "*-7.json", "anew")
    assert [e.anew for e in spool.entries()] == [True, True]


async def test_replaced_messages_stay_recorded_until_each_deletion_landed(tmp_path: Path) -> None:
    spool = WriteSpool(tmp_path, "sqlite+aiosqlite:///x.db")
    assert spool.strays() == []
    await spool.add_stray(7, KEY, "1.1")
    await spool.add_stray(7, KEY, "1.2")
    assert [(s.turn, s.message_ids) for s in spool.strays()] == [(7, ("1.1", "1.2"))]
    assert spool.entries() == []  # not taken for a pending write
    await spool.stray_removed(7, "1.1")
    assert [s.message_ids for s in spool.strays()] == [("1.2",)]
    await spool.stray_removed(7, "1.2")
    assert spool.strays() == []
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
