"""The contract between the core and a platform adapter.

An adapter is found through the ``botkit.adapters`` entry-point group, constructed with an
:class:`AdapterHost` (the only door into the core) and its own typed settings, and run until
stopped. It imports this module and :mod:`botkit.events`, never the LLM client or the database:
everything it needs from the core goes through the host.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from pydantic import BaseModel

from botkit.access.directory import Directory
from botkit.events import ConversationKey, FeedbackEvent, IncomingMessage, LiveReply
from botkit.markers import ReplyMarker, ShownMessage

__all__ = ["ShownMessage"]  # re-exported: the restart pass's record of a message read back


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One argument of a command; the first ``text`` option takes free text on keyword platforms."""

    name: str
    description: str
    required: bool = True
    kind: Literal["text", "persona"] = "text"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command as every adapter exposes it: a Discord/Slack slash command, a console ``:name``.

    ``group`` nests it (``/persona list`` is group "persona", name "list").
    """

    name: str
    description: str
    options: tuple[OptionSpec, ...] = ()
    group: str | None = None
    admin_only: bool = False

    @property
    def qualified_name(self) -> str:
        return f"{self.group} {self.name}" if self.group else self.name


@dataclass(frozen=True, slots=True)
class PersonaChoice:
    name: str
    description: str


USER_CANCELLED = "botkit: cancelled by the asker"
"""The message of the :class:`asyncio.CancelledError` that :meth:`Submission.cancel` stops an
answer with: the core tells it from a shutdown's cancellation by it (the reply then says
"Cancelled" and the turn is stored ``cancelled``, not ``interrupted``)."""


@dataclass(slots=True)
class Submission:
    """What the host did with a message: ``accepted`` is False for a duplicate delivery."""

    accepted: bool
    task: asyncio.Task[None] | None = field(default=None)
    # The database could not take it (``submit(..., redeliverable=True)`` only): nothing was
    # shown, so the adapter must not acknowledge the event; the platform then redelivers it.
    unrecorded: bool = field(default=False)
    cancel_requested: bool = field(default=False, init=False)

    def cancel(self) -> bool:
        """Stop the answer because its asker asked to (Ctrl-C in the console, a Stop button).

        The reply keeps what was shown plus a "Cancelled" note, the turn is stored as
        ``cancelled`` and the model request is abandoned (its stream is closed). Once only: a
        second call while the first is being shown does nothing. False if there was nothing
        left to cancel.
        """
        if self.task is None or self.task.done() or self.cancel_requested:
            return False
        self.cancel_requested = True
        return self.task.cancel(msg=USER_CANCELLED)

    async def wait(self) -> None:
        """Until the message is handled; an answer stopped by :meth:`cancel` ends it normally.

        The answer is shielded: cancelling the waiter (a shutdown) does not cancel the answer,
        which the core drains on its own terms.
        """
        if self.task is None:
            return
        try:
            await asyncio.shield(self.task)
        except asyncio.CancelledError:
            waiter = asyncio.current_task()
            waiter_cancelled = waiter is not None and waiter.cancelling() > 0
            if self.cancel_requested and self.task.cancelled() and not waiter_cancelled:
                return
            raise


FeedbackOutcome = Literal[
    "recorded", "changed", "unchanged", "duplicate", "unknown", "disabled", "unavailable"
]


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """What the host did with a :class:`~botkit.events.FeedbackEvent`, and what to tell the voter.

    ``text`` is the private acknowledgement (an ephemeral message): None for a ``duplicate``
    (a redelivered click was acknowledged already) where the adapter shows nothing.
    """

    outcome: FeedbackOutcome
    text: str | None


class AdapterHost(Protocol):
    """The core as an adapter sees it."""

    @property
    def commands(self) -> tuple[CommandSpec, ...]: ...

    async def submit(
        self, message: IncomingMessage, reply: LiveReply, *, redeliverable: bool = False
    ) -> Submission:
        """Persist the message (delivery claimed exactly once, question and ``queued`` reply row
        written) and start answering it in a supervised task.

        Returns as soon as it is on disk, so the adapter acknowledges the platform after this
        and inside its deadline: an acknowledged message is a persisted one. If the database
        cannot take it, a ``redeliverable`` message (the platform resends what it did not see
        acknowledged) comes back :attr:`Submission.unrecorded` with nothing shown: do not
        acknowledge it. Otherwise the asker is shown an error at once.
        """
        ...

    def personas_for(
        self, user: str, roles: frozenset[str], channel: str, platform: str = "", workspace: str = ""
    ) -> list[PersonaChoice]:
        """The personas this user may use in this channel (for autocomplete and lists), judged
        without lookups (a rule that needs one, a Slack user group, does not count here)."""
        ...

    async def vote(self, event: FeedbackEvent) -> FeedbackReceipt:
        """Store a 👍/👎 click (one vote per user and turn: a second click changes it) and say
        what to tell the voter. One short transaction: the adapter acknowledges the platform's
        interaction after this returns, inside its 3-second deadline. Never raises for a bad
        turn id or a database outage: the receipt says so."""
        ...

    async def post_first(
        self, reply: LiveReply, *, where: ConversationKey | None = None, persona: str | None = None
    ) -> str:
        """Post ``reply``'s first message (the core's placeholder) now and return its id, for a
        platform that needs it before the message can be submitted (a Slack slash command's
        reply is the conversation's thread). ``where`` (its thread may be "") and the requested
        ``persona`` let the core put the persona's before-notice on it from the start. The
        core's retry policy and shared budget apply; raises what the platform refused, or the
        last 429/transient error after the deadline.
        """
        ...

    async def attach_directory(self, directory: Directory) -> None:
        """Hand the core this platform's :class:`~botkit.access.Directory` (channel names, user
        groups, admin posts), before serving: channel names in the configuration are resolved
        now, and one that does not exist raises :class:`AdapterError` naming it."""
        ...

    def channel_renamed(self, platform: str, channel_id: str, name: str) -> None:
        """Tell the core a channel's new name (bindings to it are kept)."""
        ...


class Adapter(ABC):
    """Base class of a platform adapter."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, host: AdapterHost, settings: BaseModel | None) -> None:
        self.host = host
        self.settings = settings

    async def check(self) -> None:
        """Fail fast, before anything starts, on bad tokens or missing scopes (raise AdapterError)."""
        return None

    @abstractmethod
    async def run(self) -> None:
        """Serve until cancelled or until the platform connection ends for good."""

    async def shown_text(self, key: ConversationKey, message_id: str) -> str | None:
        """The text the platform shows now in a reply message a previous process posted.

        The restart pass reads it before :meth:`repair`, so that a message that already says it
        was interrupted is not edited again. Return None where it cannot be read (deleted, no
        permission, or an adapter that does not read messages: this default); the core then
        decides from what it stored alone.
        """
        return None

    async def repair(self, key: ConversationKey, message_id: str, text: str) -> bool:
        """Replace a message a previous process left unfinished (it crashed mid-reply, or while
        the reply waited its turn) with ``text``: its stored partial answer and a note saying
        it was interrupted.

        Called after :meth:`check` and before :meth:`run`, for turns the database holds as
        unfinished only: a reply whose complete answer was shown is stored as it was (from the
        pending-write spool) and never repaired. Return False where the platform cannot edit it
        any more (an expired interaction token); the core then only logs it.
        """
        return False

    @property
    def unmarked_streams(self) -> bool:
        """Whether a turn's streaming message may carry no marker until it is finished (Slack's
        native streaming: ``chat.startStream`` takes no metadata). :meth:`reply_messages` then
        also lists such a message, with ``marker`` None, and the restart pass reads the
        conversation for every turn that was streaming (:mod:`botkit.repair`)."""
        return False

    async def close_stream(
        self,
        key: ConversationKey,
        message_id: str,
        marker: ReplyMarker,
        text: str | None = None,
        *,
        shown: str | None = None,
    ) -> bool:
        """A turn's streaming message that carries no marker yet (:attr:`unmarked_streams`), as
        the restart pass settles it: stopped where it still streams, and given ``marker``, so
        that no later turn's pass takes it for its own; with ``text`` (the partial answer and
        the note), showing that, as :meth:`repair` would; without, left showing ``shown`` (what
        it shows now, read back). True if it did. This default, for a platform without such
        streams: :meth:`repair` where there is a ``text``."""
        return await self.repair(key, message_id, text) if text is not None else False

    @property
    def hands_back_first(self) -> bool:
        """Whether a reply's first message posted with a turn's marker is answered, for a while,
        with the message posted before with that marker, instead of a new one
        (:attr:`LiveReply.handed_back <botkit.events.LiveReply.handed_back>`; Discord's
        ``nonce``): the restart's note for a turn with no message found is then posted that way
        first, so that a placeholder whose id was never recorded, and that the listing did not
        reach, is handed back and repaired in place (:mod:`botkit.repair`)."""
        return False

    async def reply_messages(
        self, key: ConversationKey, turn: int, *, question: str | None = None, since: float | None = None,
        others: Collection[str] = (),
    ) -> list[ShownMessage] | None:  # fmt: skip
        """Every message in the conversation ``key`` that carries the marker of ``turn``
        (:attr:`LiveReply.marker <botkit.events.LiveReply.marker>`), oldest first, as the
        platform shows them now: the restart pass finds with it the messages a process posted but
        did not record (killed between the post and the write), and a placeholder that a text
        posted anew replaced. None where the platform keeps no readable marker (this default:
        the core then goes by the recorded ids and :meth:`shown_text`); called after
        :meth:`check` and before :meth:`run`, and by the sweep while serving.

        ``question`` is the turn's delivery id (:attr:`IncomingMessage.delivery_id
        <botkit.events.IncomingMessage.delivery_id>`, None where none was stored): a platform
        without readable markers tells the turn's messages apart by what they answer (Discord:
        the question's message or interaction id), since one conversation holds many turns.
        ``since`` is when the turn was accepted (Unix seconds, the row's creation by botkit's
        clock; None where unknown): where the turn's messages are not a thread of their own (a
        Slack DM) the conversation's history is read from shortly before it, not whole. A
        :class:`~botkit.markers.Listing` whose ``cut`` is set says the search stopped at one of
        its bounds (a message of the turn may lie past it). ``others``: ids of messages recorded
        as other turns' streams left without their marker (where :attr:`unmarked_streams`):
        never listed for this turn, though they carry no marker either.
        """
        return None

    async def find_shown(
        self, key: ConversationKey, text: str, *, since: float | None = None, after: str | None = None
    ) -> list[ShownMessage] | None:
        """The bot's messages showing exactly ``text`` in the conversation ``key`` (where
        :meth:`reply_in` posts, and where its replies go), posted at or after ``since`` (Unix
        seconds, by botkit's clock) or after the message ``after``, oldest first. The restart
        pass finds with it what a killed process posted but could not record, where the platform
        keeps no readable marker: its own note to ask again (posted by a pass killed before it
        settled the row: :func:`botkit.repair.repair_leftover`, so that the next pass posts no
        second one), and a final view's messages whose responses never came back (its last ones,
        or all of it where it was posted anew: after the turn's last known message). None
        where the platform cannot tell (this default): one whose messages carry readable
        markers finds them by :meth:`reply_messages` instead."""
        return None

    async def add_feedback(self, key: ConversationKey, message_id: str, turn_id: int) -> bool:
        """Give a message a previous process posted the 👍/👎 buttons of ``turn_id``, its text
        left as it is, unless it shows them already (then nothing is sent).

        The restart pass calls it for the last message of a complete answer whose final view it
        found shown (:func:`botkit.repair.repair_leftover`) where that view was meant to carry
        the buttons: the view's last call, which carries them, may be the one a kill cut (or a
        call after the text landed: a Discord continuation's edit, a native stream's stop).
        Reading first keeps it to one set of buttons when a second restart pass runs again.
        Called after :meth:`check` and before :meth:`run`. True once the message shows them;
        False where the platform cannot (this default), or refused (logged)."""
        return False

    async def remove(self, key: ConversationKey, message_id: str) -> bool:
        """Delete a message a previous process left behind: a placeholder (or a partial view)
        that a text posted anew replaced, whose deletion was cut by the crash. True if it is
        gone (also if it was gone already); False where the platform cannot (this default)."""
        return False

    async def reply_in(
        self, key: ConversationKey, user: str, *, question: str | None = None
    ) -> LiveReply | None:
        """A new reply in the conversation ``key`` (a Slack thread, a Discord channel or thread),
        for the restart pass: a message a previous process accepted (persisted) but never began
        to answer has no placeholder to repair, so the core opens a reply where it was asked and
        answers there. None where the platform cannot (this default; an expired interaction
        token); the core then only logs it. Called after :meth:`check` and before :meth:`run`.
        ``question``: the turn's delivery id, as for :meth:`reply_messages` (the reply may
        reference it where the platform has replies, so the asker sees which question it is).
        """
        return None


class AdapterError(Exception):
    """An adapter cannot start; the message says what is wrong and how to fix it."""
