"""The restart pass on the platform: what a gone process's unfinished turn shows, and its fix.

:func:`botkit.leftovers.settle_abandoned` stores each such turn as interrupted from the database
alone; this module then reads the platform and closes the crash windows the database cannot see:

- **a placeholder posted but not recorded** (killed between the post and its write): found by its
  marker (:meth:`Adapter.reply_messages`) and edited to say what happened, instead of a second,
  new "ask again" reply beside a "Thinking…" that stays forever;
- **the final view in flight** (its intent spooled before the request went out, the response
  not back): if the platform shows it, the turn is stored as meant (usually ``complete``) and its
  text is never edited (a complete answer's last message gets the 👍/👎 it lacks, where the view
  was meant to carry them); otherwise it is interrupted, its partial answer kept and said so;
- **a final text posted anew before its placeholder was deleted** (stored or not): the replaced
  messages are removed, so one final reply is left.

Where the platform keeps no readable marker (Discord) :meth:`Adapter.reply_messages` lists
what can be told apart otherwise, by the question the turn answers (:attr:`Leftover.question`,
its delivery id; Discord: the bot's message that replies to it or answers its interaction, or
the first message in the thread a mention started); elsewhere the recorded ids and
:meth:`Adapter.shown_text` are all there is, and a placeholder that was never recorded cannot be
found (docs/reliability.md lists where).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botkit.adapter import Adapter
from botkit.events import LiveReply
from botkit.leftovers import LOST_PLACEHOLDER_NOTE, UNANSWERED_NOTE, Leftover, started_by_older
from botkit.markers import Listing, ReplyMarker, ShownMessage
from botkit.store import ConversationStore
from botkit.store.spool import SpooledNote, WriteSpool
from botkit.streaming.budget import EditBudget
from botkit.streaming.formatting import split_message
from botkit.streaming.retry import RetryPolicy

log = logging.getLogger("botkit.app")

#: Seconds before a turn was accepted from which other turns' recorded messages are read
#: (:class:`_Elsewhere`): a turn queued that long before it can still answer after its question.
ELSEWHERE_BEFORE = 3600.0

Respond = Callable[[LiveReply, str], Awaitable[object]]
"""Shows a text as a new reply (the core's normal reply path: ``Router.respond``)."""


async def repair_leftover(
    adapter: Adapter,
    store: ConversationStore,
    spool: WriteSpool | None,
    leftover: Leftover,
    respond: Respond,
    *,
    feedback: bool = False,
) -> None:
    """Make the platform show what happened to ``leftover``'s turn (see the module docstring),
    then settle its row. ``feedback`` (``[feedback] enabled``): a complete answer found shown
    without the 👍/👎 its final view was meant to carry gets them (:meth:`Adapter.add_feedback`).

    The row (claimed by this process: :func:`botkit.leftovers.settle_abandoned`) and the spool's
    records of it stay as they were until the platform shows what happened: a second kill
    before that leaves them for the next start, which repairs the turn again. That pass finds
    the message saying it was interrupted already (the repair text is the stored partial answer
    and the note, the same on every pass) and leaves it alone, so the message is edited once.
    """
    key = leftover.key
    if leftover.settled:
        await _remove(adapter, leftover, leftover.strays)
        await _discard_strays(spool, leftover)
        await _mark_unmarked(adapter, spool, leftover, feedback=feedback)
        return
    # Listed only where the recorded ids may not tell the whole story (one read of the thread).
    needed = not leftover.message_id or leftover.intent is not None or bool(leftover.strays)
    needed = needed or (leftover.started and adapter.unmarked_streams)
    marked = await _marked(adapter, leftover) if needed else None
    intent = leftover.intent
    if intent is not None and intent.shown is not None:
        if await _keep_shown_final(adapter, store, spool, leftover, marked, feedback=feedback):
            return
        log.warning("turn %s in %s: its final view was not shown; marking it interrupted", leftover.turn, key)
    if await _show_interruption(adapter, store, spool, leftover, marked, respond, feedback=feedback):
        # A placeholder handed back showed the final view: stored as shown. The note's record
        # (spooled before its post) goes too: no note was posted, the post was handed that.
        if spool is not None:
            await spool.notes.discard(leftover.turn)
        return
    # Settled only now that the platform says so (see above).
    if leftover.interrupted is not None:
        if not await _settle(store, leftover, dict(leftover.interrupted)):
            return
        if spool is not None and intent is not None:
            await spool.discard(leftover.turn)
        if spool is not None:
            await spool.notes.discard(leftover.turn)
    await _discard_strays(spool, leftover)


async def _keep_shown_final(
    adapter: Adapter,
    store: ConversationStore,
    spool: WriteSpool | None,
    leftover: Leftover,
    marked: Sequence[ShownMessage] | None,
    *,
    feedback: bool,
) -> bool:
    """If the platform shows the spooled final view, store the turn as it was meant, leave its
    text alone (its last message gets the 👍/👎 it was meant to carry, if it lacks them: before
    the row is settled, so a kill in between leaves that for the next pass) and remove what it
    replaced; True when it did (the leftover is done)."""
    assert leftover.intent is not None and leftover.intent.shown is not None
    seen = await _reply_shown(adapter, leftover, marked)
    final = await _shown_view(adapter, leftover, seen, _Elsewhere(store, leftover))
    if final is None:
        return False
    # The last message given its buttons is marked with them; a stream among them is not closed again.
    buttoned = feedback and leftover.intent.feedback and await _add_feedback(adapter, leftover, final[-1])
    values = dict(leftover.intent.values, platform_message_ids=[m.message_id for m in final])
    if not await _settle(store, leftover, values):
        return True
    if spool is not None:
        await spool.discard(leftover.turn)
    log.warning(
        "turn %s in %s: its final view was shown when botkit stopped (the response had not "
        "come back); stored it as shown (%s), message left as it is",
        leftover.turn,
        leftover.key,
        values.get("status"),
    )
    finals = {m.message_id for m in final}
    await _remove(adapter, leftover, [m.message_id for m in seen if m.message_id not in finals])
    closing = [m for m in final if m in (marked or []) and not (buttoned and m is final[-1])]
    await _close_streams(adapter, leftover, closing)
    await _discard_strays(spool, leftover)
    return True


async def _close_streams(adapter: Adapter, leftover: Leftover, final: Sequence[ShownMessage]) -> None:
    """A final view shown in full by a stream that was never stopped (the kill before its
    ``chat.stopStream``): stopped now with the turn's marker, its text left as it is, so that it
    stops streaming and no later turn's pass takes it for its own (listed without a marker:
    :attr:`Adapter.unmarked_streams`)."""
    if not adapter.unmarked_streams:
        return
    for message in final:
        if message.marker is None:
            await _close(adapter, leftover, message.message_id, shown=message.text)


async def _close(
    adapter: Adapter,
    leftover: Leftover,
    message_id: str,
    text: str | None = None,
    *,
    shown: str | None = None,
) -> bool:
    """:meth:`Adapter.close_stream` with the turn's final marker; a failure is only logged (the
    stream shows what it shows). True if it did."""
    try:
        marker = ReplyMarker(leftover.turn, "final")
        closed = await adapter.close_stream(leftover.key, message_id, marker, text, shown=shown)
    except Exception:
        log.exception("could not stop or repair the stream %s in %s", message_id, leftover.key)
        return False
    if not closed:
        log.warning("the stream %s in %s cannot be stopped or edited any more", message_id, leftover.key)
    return closed


async def _mark_unmarked(
    adapter: Adapter, spool: WriteSpool | None, leftover: Leftover, *, feedback: bool = False
) -> None:
    """The streams a finished turn left without its marker (Slack refused the stop and the
    marking ``chat.update``: the spool's ``unmarked``), marked now with the turn's final marker,
    their text as it shows (:meth:`Adapter.close_stream`). A record goes once its stream is
    marked; one that cannot be read or marked stays, so that no other turn's pass takes the
    stream (:attr:`Leftover.others`) and the next start tries again. One that shows the turn's
    marker already (its own turn's restart marked it, killed before the record went) is left
    as it is: re-sending its text as Markdown could change how it shows. With ``feedback``, a
    stream whose refused marking carried the final's 👍/👎 (:attr:`Leftover.buttoned`) gets them
    with its marker (:meth:`Adapter.add_feedback`: one row, never twice)."""
    marked = await _carrying_marker(adapter, leftover)
    for message_id in leftover.unmarked:
        if message_id in marked:
            if spool is not None:
                await spool.unmarked.remove(leftover.turn, message_id)
            continue
        shown = await _shown_text(adapter, leftover, message_id)
        if shown is None:
            log.warning(
                "the unmarked stream %s in %s cannot be read; left recorded", message_id, leftover.key
            )
            continue
        if feedback and message_id in leftover.buttoned:
            done = await _add_feedback(adapter, leftover, ShownMessage(message_id, shown))
        else:
            done = await _close(adapter, leftover, message_id, shown=shown)
        if done and spool is not None:
            await spool.unmarked.remove(leftover.turn, message_id)


async def _carrying_marker(adapter: Adapter, leftover: Leftover) -> set[str]:
    """The ids of the messages in ``leftover``'s conversation that carry its turn's marker (none
    where they cannot be listed)."""
    try:
        listed = await adapter.reply_messages(leftover.key, leftover.turn)
    except Exception:
        log.exception("could not list the messages of turn %s in %s", leftover.turn, leftover.key)
        return set()
    return {m.message_id for m in listed or [] if m.marker is not None}


class _Elsewhere:
    """The messages other turns recorded in the turn's channel (:meth:`ConversationStore.recorded_elsewhere`),
    read once, when a message found by its text is to be told from theirs: from
    :data:`ELSEWHERE_BEFORE` seconds before the turn was accepted (a turn accepted before it
    can answer after its question). Where the database cannot say: none (logged)."""

    def __init__(self, store: ConversationStore, leftover: Leftover) -> None:
        self._store, self._leftover = store, leftover
        self._ids: set[str] | None = None

    async def ids(self) -> set[str]:
        if self._ids is None:
            leftover = self._leftover
            since = datetime.fromtimestamp((leftover.asked_at or time.time()) - ELSEWHERE_BEFORE, UTC)
            key = (leftover.key.platform, leftover.key.workspace, leftover.key.channel, leftover.key.thread)
            try:
                self._ids = await self._store.recorded_elsewhere(key, leftover.turn, since)
            except Exception:
                log.exception("could not read the messages other turns recorded in %s", leftover.key)
                self._ids = set()
        return self._ids


async def _shown_view(
    adapter: Adapter, leftover: Leftover, seen: Sequence[ShownMessage], elsewhere: _Elsewhere
) -> list[ShownMessage] | None:
    """The messages showing the intended final view in any of the forms it may take (the
    expected one, or a fallback the reply took after the intent was spooled: Slack's
    ``chat.update`` for a refused ``chat.startStream``); None if none is shown."""
    assert leftover.intent is not None
    for form in leftover.intent.views:
        final = final_view(seen, form) or await _with_unrecorded_tail(
            adapter, leftover, seen, form, elsewhere
        )
        if final is not None:
            return final
    return None


async def _show_interruption(
    adapter: Adapter,
    store: ConversationStore,
    spool: WriteSpool | None,
    leftover: Leftover,
    marked: Sequence[ShownMessage] | None,
    respond: Respond,
    *,
    feedback: bool,
) -> bool:
    """Edit the turn's message to its partial answer and the note (or "ask again"), unless it
    says so already; with no message to edit, tell the asker in a new reply. Strays go. True
    only where the note's post was handed the turn's lost placeholder, and that showed the
    final view (:func:`_repair_handed_back`): the turn is stored as shown already."""
    stream = _unstopped_stream(leftover, marked or []) if adapter.unmarked_streams else None
    if stream is not None:
        await _repair_stream(adapter, leftover, stream, marked or [])
        return False
    target = _target(leftover, marked or [], set(leftover.strays))
    if target is None:
        await _remove(adapter, leftover, leftover.strays)
        cut = isinstance(marked, Listing) and marked.cut
        handed = await _tell(adapter, spool, leftover, respond, cut=cut)
        return handed is not None and await _repair_handed_back(
            adapter, store, spool, leftover, handed, feedback=feedback
        )
    found = next((m for m in marked or [] if m.message_id == target), None)
    shown = found.text if found is not None else await _shown_text(adapter, leftover, target)
    await _say_interrupted(adapter, leftover, target, shown)
    await _remove(adapter, leftover, [m for m in leftover.strays if m != target])
    return False


async def _say_interrupted(adapter: Adapter, leftover: Leftover, target: str, shown: str | None) -> None:
    """The turn's message ``target`` (showing ``shown``) edited to say it was interrupted."""
    text = UNANSWERED_NOTE if leftover.inbox else leftover.repaired(shown)
    if text is not None and shown != text:
        await _edit(adapter, leftover, target, text)
    else:
        log.info("the interrupted reply %s in %s already says so; left as it is", target, leftover.key)


async def _repair_handed_back(
    adapter: Adapter,
    store: ConversationStore,
    spool: WriteSpool | None,
    leftover: Leftover,
    handed: ShownMessage,
    *,
    feedback: bool,
) -> bool:
    """The note's post was handed back the turn's first message (posted, its id never recorded,
    and not found by the listing: :attr:`Adapter.hands_back_first`). Where it shows the final
    view in flight, the turn is stored as shown and True returned; otherwise it is repaired in
    place like a recorded one (no note posted beside it)."""
    log.warning(
        "turn %s in %s: the platform handed back its first message %s, never recorded",
        leftover.turn,
        leftover.key,
        handed.message_id,
    )
    intent = leftover.intent
    shown = intent is not None and intent.shown is not None
    if shown and await _keep_shown_final(adapter, store, spool, leftover, [handed], feedback=feedback):
        return True
    await _say_interrupted(adapter, leftover, handed.message_id, handed.text)
    return False


def _unstopped_stream(leftover: Leftover, marked: Sequence[ShownMessage]) -> ShownMessage | None:
    """The turn's stream that carries no marker yet (where :attr:`Adapter.unmarked_streams`:
    listed after the turn's own marked messages, unmarked; elsewhere, e.g. Discord, no message
    carries a marker and this does not apply), if the turn was streaming: its answer is there,
    not in the placeholder the stream was about to replace."""
    unmarked = [m for m in marked if m.marker is None]
    return unmarked[-1] if leftover.started and unmarked else None


async def _repair_stream(
    adapter: Adapter, leftover: Leftover, stream: ShownMessage, marked: Sequence[ShownMessage]
) -> None:
    """The stream shows the partial answer and the note, stopped and marked as the turn's (so
    that no later turn's pass takes it: :meth:`Adapter.close_stream`); the placeholder it
    replaced, whose deletion the kill cut, goes, so one message is left. The placeholder goes
    first: a second kill after the stream was marked leaves no other message of the turn, and
    the next pass finds the stream saying so already."""
    replaced = [m.message_id for m in marked if m.message_id != stream.message_id]
    await _remove(adapter, leftover, [*replaced, *(s for s in leftover.strays if s not in replaced)])
    text = leftover.repaired(stream.text)
    if text is not None and stream.text != text:
        await _close(adapter, leftover, stream.message_id, text)


async def leave_unread(store: ConversationStore, leftover: Leftover) -> bool:
    """A leftover of a platform this process does not serve whose final view's intent is on disk:
    only that platform can tell whether the complete answer was shown, so the row goes back to
    the gone process it was claimed from, still unfinished, and its intent stays in the spool,
    for a start that serves the platform (or a serving process's sweep) to decide. True if it
    was left so; False if the row could not be released (kept claimed: this process's next
    sweep tries again)."""
    try:
        await store.release_unfinished(leftover.turn, leftover.owner)
    except Exception:
        log.exception("could not leave turn %s in %s for a start that serves it", leftover.turn, leftover.key)
        return False
    return True


async def settle_unread(store: ConversationStore, spool: WriteSpool | None, leftover: Leftover) -> None:
    """A leftover of a platform this process does not serve, with no intent to read back: what
    the database knows is stored, and its spool records go."""
    settled = leftover.interrupted is not None and await _settle(store, leftover, dict(leftover.interrupted))
    if settled and spool is not None:
        await spool.discard(leftover.turn)
    await _discard_strays(spool, leftover)


async def _settle(store: ConversationStore, leftover: Leftover, values: dict[str, Any]) -> bool:
    """The conditional final write of an unsettled turn: False if another process took it or
    the database is away (the row and the intent stay: this process's sweep, or the next start,
    tries again)."""
    try:
        return await store.settle_unfinished(leftover.turn, **values)
    except Exception:
        log.exception("could not store turn %s in %s; left for the next start", leftover.turn, leftover.key)
        return False


async def _discard_strays(spool: WriteSpool | None, leftover: Leftover) -> None:
    if spool is not None and leftover.strays:
        await spool.discard_strays(leftover.turn)


def final_view(messages: Sequence[ShownMessage], intent: Sequence[str]) -> list[ShownMessage] | None:
    """The messages that show ``intent`` (the final view's texts as the platform renders them),
    the last ones of the turn in order; None if the platform does not show it."""
    count = len(intent)
    if count == 0 or len(messages) < count:
        return None
    last = list(messages[-count:])
    return last if [m.text for m in last] == list(intent) else None


async def _with_unrecorded_tail(
    adapter: Adapter,
    leftover: Leftover,
    seen: Sequence[ShownMessage],
    intent: Sequence[str],
    elsewhere: _Elsewhere,
) -> list[ShownMessage] | None:
    """The final view, where its last messages were posted but their ids never came back (the
    process was killed with the POST in flight): the turn's known messages end with the
    view's first ones, and each missing one is found after the one before it by its text
    (:meth:`Adapter.find_shown`). Only where the intent says the view's first message is
    anew (:attr:`SpooledWrite.anew`: posted by the view, a placeholder that could not be
    posted, or in place of the one it edits, a Discord slash reply moved to the channel once
    its token aged out) may none of the known messages be in it: then its first message is
    looked for after the turn's last known message, or after its question where it has
    none (a Discord snowflake: an interaction's id too). A plain final edit of a recorded
    message is never looked for so: with that edit not applied, another turn's identical
    answer after it would pass for this turn's. A message another turn's row holds as its own
    (``elsewhere``: that turn's identical answer, recorded) is never taken for this turn's.
    None if any of them is not shown."""
    assert leftover.intent is not None
    last = 0 if leftover.intent.anew else 1
    for head in range(min(len(seen), len(intent) - 1), last - 1, -1):
        if head and [m.text for m in seen[-head:]] != list(intent[:head]):
            continue
        view = list(seen[-head:]) if head else []
        anchor = seen[-1].message_id if seen else leftover.question
        if not anchor:
            return None
        for text in intent[head:]:
            after = view[-1].message_id if view else anchor
            try:
                found = await adapter.find_shown(leftover.key, text, after=after)
            except Exception:
                log.exception("could not look for the rest of turn %s in %s", leftover.turn, leftover.key)
                return None
            if found:
                taken = await elsewhere.ids()
                found = [m for m in found if m.message_id not in taken]
            if not found:
                return None
            view.append(found[0])
        return view
    return None


def _target(leftover: Leftover, marked: Sequence[ShownMessage], strays: set[str]) -> str | None:
    """The message to edit: the recorded one (unless it was replaced), else the first marked
    message that was not replaced (the placeholder whose id was never stored)."""
    if leftover.message_id and leftover.message_id not in strays:
        return leftover.message_id
    kept = [m.message_id for m in marked if m.message_id not in strays]
    if leftover.message_id and kept:
        return kept[-1]  # the text posted anew in its place
    return kept[0] if kept else None


async def _marked(adapter: Adapter, leftover: Leftover) -> list[ShownMessage] | None:
    """The turn's messages on the platform. Where :attr:`Adapter.unmarked_streams`, an unmarked
    one is a stream found by where it is, and only a turn that was streaming had one: any other
    turn leaves it alone (it is another turn's)."""
    try:
        if not leftover.turn:
            return None
        listed = await adapter.reply_messages(
            leftover.key,
            leftover.turn,
            question=leftover.question,
            since=leftover.asked_at,
            others=leftover.others,
        )
    except Exception:
        log.exception("could not list the messages of turn %s in %s", leftover.turn, leftover.key)
        return None
    if listed is not None and adapter.unmarked_streams and not leftover.started:
        return [m for m in listed if m.marker is not None]
    return listed


async def _reply_shown(
    adapter: Adapter, leftover: Leftover, marked: Sequence[ShownMessage] | None
) -> list[ShownMessage]:
    """Every message of the reply as the platform shows it: those listed (by marker, or told
    apart by what they answer) and the recorded ones the listing left out, read by id (on
    Discord a long reply's continuation messages reference nothing and are not listed; they
    are recorded as they are posted). Listed messages that were never recorded (a placeholder
    whose id did not come back) come first: the reply's first message; then the recorded ones
    in the order they were posted. A recorded message that cannot be read is left out (then
    the final view cannot be matched, and the turn is stored interrupted)."""
    listed = list(marked or [])
    recorded = set(leftover.recorded)
    if recorded <= {m.message_id for m in listed}:
        return listed
    by_id = {m.message_id: m for m in listed}
    shown = [m for m in listed if m.message_id not in recorded]
    for message_id in leftover.recorded:
        found = by_id.get(message_id)
        text = found.text if found is not None else await _shown_text(adapter, leftover, message_id)
        if text is not None:
            shown.append(ShownMessage(message_id, text))
    return shown


async def _shown_text(adapter: Adapter, leftover: Leftover, message_id: str) -> str | None:
    try:
        return await adapter.shown_text(leftover.key, message_id)
    except Exception:
        log.exception("could not read the interrupted reply %s in %s", message_id, leftover.key)
        return None


async def _edit(adapter: Adapter, leftover: Leftover, message_id: str, text: str) -> None:
    try:
        repaired = await adapter.repair(leftover.key, message_id, text)
    except Exception:
        log.exception("could not repair the interrupted reply %s in %s", message_id, leftover.key)
        return
    if not repaired:
        log.info("the interrupted reply %s in %s cannot be edited any more", message_id, leftover.key)


async def _add_feedback(adapter: Adapter, leftover: Leftover, message: ShownMessage) -> bool:
    """The 👍/👎 on a complete answer's last message (:meth:`Adapter.add_feedback`); True once
    it shows them. A failure is logged: the answer is complete without them."""
    try:
        added = await adapter.add_feedback(leftover.key, message.message_id, leftover.turn)
    except Exception:
        log.exception("could not add the feedback buttons to %s in %s", message.message_id, leftover.key)
        return False
    if not added:
        log.info("the feedback buttons could not be added to %s in %s", message.message_id, leftover.key)
    return added


async def _remove(adapter: Adapter, leftover: Leftover, message_ids: Sequence[str]) -> None:
    for message_id in message_ids:
        try:
            removed = await adapter.remove(leftover.key, message_id)
        except Exception:
            log.exception("could not remove the replaced message %s in %s", message_id, leftover.key)
            continue
        if removed:
            log.info(
                "removed the replaced message %s of turn %s in %s", message_id, leftover.turn, leftover.key
            )
        else:
            log.warning("the replaced message %s in %s cannot be removed", message_id, leftover.key)


async def _tell(
    adapter: Adapter, spool: WriteSpool | None, leftover: Leftover, respond: Respond, *, cut: bool = False
) -> ShownMessage | None:
    """No message to edit: the asker gets one note in a new reply where they asked. A pass that
    runs again (killed before it settled the row) must find that note and leave it alone
    instead of posting a second one: where markers can be read (Slack) the note carries the
    turn's and is listed as the turn's message; elsewhere (Discord) the note is spooled, with
    its time, before it is posted, and the next pass looks for it from then
    (:meth:`Adapter.find_shown`).

    Where the platform hands back a turn's first message (:attr:`Adapter.hands_back_first`)
    the note is posted as the turn's first message: the message handed back instead, if any,
    is returned (the turn's placeholder, posted and never recorded), and no note was posted.
    Where the listing was ``cut`` short of where such a placeholder could be, the note says
    that an earlier reply still "Thinking…" was cut off too (:data:`LOST_PLACEHOLDER_NOTE`)."""
    plain = UNANSWERED_NOTE if leftover.inbox or not leftover.partial else leftover.text
    worded = f"{plain}\n\n{LOST_PLACEHOLDER_NOTE}"
    text = worded if cut and not leftover.message_id else plain
    try:
        reply = await adapter.reply_in(leftover.key, leftover.user or "", question=leftover.question)
        if reply is None:
            log.warning("cannot tell %s in %s that its question was lost", leftover.user, leftover.key)
            return None
        # Either form: an earlier pass decided ``cut`` by then (a listing cut since, by the time
        # or by that pass's own note, makes this one's text differ from the note it posted).
        # Each as the messages it was split into (_post_note): a long note is no one message.
        # The form that pass spooled first (told_cut): a note of its found only as far as the
        # parts both forms share is finished in its words (_told_already: the first on a tie).
        told = () if leftover.told_cut is None else (worded if leftover.told_cut else plain,)
        notes = [_note_chunks(reply, form) for form in dict.fromkeys((*told, text, plain))]
        told_at = leftover.told_at
        if told_at is not None and await _told_already(adapter, leftover, reply, notes, told_at):
            return None
        if leftover.turn:
            reply.marker = ReplyMarker(leftover.turn, "final")
            reply.older_turn = started_by_older(leftover.owner)  # its first message keyed as it was
            if spool is not None:
                key = leftover.key
                where = (key.platform, key.workspace, key.channel, key.thread)
                await spool.notes.save(SpooledNote(leftover.turn, where, time.time(), cut=text != plain))
            if adapter.hands_back_first:
                return await _post_note(reply, text)
        await respond(reply, text)
    except Exception:
        log.exception("could not tell %s in %s that botkit restarted", leftover.user, leftover.key)
    return None


def _note_chunks(reply: LiveReply, text: str) -> list[str]:
    """The messages a note of ``text`` is posted as (:func:`_post_note`)."""
    return split_message(text, reply.max_chars, reply.measure)


async def _post_note(reply: LiveReply, text: str) -> ShownMessage | None:
    """Post the note as the turn's first message (its marker set): the message the platform
    hands back instead, if it does (then nothing was posted), else None with the note shown,
    split over messages as the core's replies are.

    Each post lands as the core's first messages do (:meth:`RetryPolicy.land`: a 429 waited
    out, a 5xx or timeout retried until the deadline), on a budget of the reply's post rate: a
    single refusal must not lose the note while the row is settled all the same. A retried first
    post is safe: it carries the turn's nonce, so Discord hands back the note it created."""
    chunks = _note_chunks(reply, text)
    posts = _note_posts(reply)
    reply.handed_back = None
    message_id = await posts.land(lambda: reply.post_placeholder(chunks[0]))
    handed = reply.handed_back
    if handed is not None and handed.message_id == message_id:
        return handed
    await _post_rest(reply, posts, chunks[1:])
    return None


def _note_posts(reply: LiveReply) -> RetryPolicy:
    """The retry policy a note's posts land with: a budget of the reply's post rate."""
    scope = reply.rate_scope("post")
    return RetryPolicy(EditBudget(scope.per_second, scope.burst))


async def _post_rest(reply: LiveReply, posts: RetryPolicy, chunks: Sequence[str]) -> None:
    """A note's messages after its first, each a continuation (no nonce: only the first has one)."""
    for chunk in chunks:
        await posts.land(functools.partial(reply.post_continuation, chunk))


async def _told_already(
    adapter: Adapter, leftover: Leftover, reply: LiveReply, notes: Sequence[Sequence[str]], since: float
) -> bool:
    """A previous pass posted one of ``notes`` (its note, each as the messages it was split
    into) where the asker asked, at or after ``since``: its first message, and each other one
    after the one before it. A note cut short by a kill between its messages (its first ones
    shown, in order, the rest not) is finished here: only the missing messages are posted,
    after the last one shown, so the asker sees one whole note (the form shown furthest; the
    first of ``notes`` on a tie: the form the killed pass spooled, where its record says, else
    this pass's own). True where the asker has been told (nothing more to post)."""
    best: tuple[Sequence[str], list[ShownMessage]] | None = None
    for chunks in notes:
        try:
            shown = await _note_shown(adapter, leftover, chunks, since)
        except Exception:
            log.exception("could not look for the note of turn %s in %s", leftover.turn, leftover.key)
            return False
        if len(shown) == len(chunks):
            log.info(
                "turn %s in %s: a previous restart told the asker already (message %s); left as it is",
                leftover.turn,
                leftover.key,
                shown[0].message_id,
            )
            return True
        if shown and (best is None or len(shown) > len(best[1])):
            best = (chunks, shown)
    if best is None:
        return False
    chunks, shown = best
    log.warning(
        "turn %s in %s: a previous restart's note was cut after %d of its %d messages; posting the rest",
        leftover.turn,
        leftover.key,
        len(shown),
        len(chunks),
    )
    await _post_rest(reply, _note_posts(reply), chunks[len(shown) :])
    return True


async def _note_shown(
    adapter: Adapter, leftover: Leftover, chunks: Sequence[str], since: float
) -> list[ShownMessage]:
    """The messages of the note ``chunks`` shown, in order: its first from ``since`` on, each
    other one after the one before it (:meth:`Adapter.find_shown`), up to the first not shown
    (empty where its first is not)."""
    found = await adapter.find_shown(leftover.key, chunks[0], since=since)
    shown = [found[0]] if found else []
    for chunk in chunks[1:]:
        if not shown:
            break
        after = await adapter.find_shown(leftover.key, chunk, after=shown[-1].message_id)
        if not after:
            break
        shown.append(after[0])
    return shown
