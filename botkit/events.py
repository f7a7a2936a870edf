"""The platform-neutral event model that crosses the adapter boundary.

Adapters translate a Slack event, a Discord interaction or a console line into an
:class:`IncomingMessage` and hand the core a :class:`LiveReply` through which the answer is shown;
a click on a final reply's 👍/👎 becomes a :class:`FeedbackEvent`.
Nothing in here knows about any platform SDK, and adapters need nothing but this module (and
:mod:`botkit.adapter`) from the core.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from botkit.markers import ReplyMarker, ShownMessage
from botkit.ratefeed import RateFeed


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Identifies one conversation: a thread on a platform.

    ``workspace`` is the Slack team / Discord guild ("" where the platform has none, e.g. the
    console); ``thread`` is the thread root (Slack ``thread_ts``, Discord thread channel id,
    console ``--thread`` name).
    """

    platform: str
    workspace: str
    channel: str
    thread: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}/{self.channel}/{self.thread}"


def _frozen_mapping(value: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """``text`` as every later stage can take it: a lone surrogate (invalid UTF-16 from a
    platform's JSON ``\\ud83d`` escape) becomes U+FFFD, NUL and other control characters except
    tab and newlines are dropped. Zero-width and bidirectional marks are kept: they are text.

    Done once, here, for every adapter: a database refuses a lone surrogate (UnicodeEncodeError)
    and PostgreSQL a NUL, and neither is anything a user meant to send.
    """
    if text.isascii() and (text.isprintable() or not _CONTROLS.search(text)):
        return text
    return _CONTROLS.sub("", _SURROGATES.sub("\ufffd", text))


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message a user sent to the bot, already stripped of platform specifics.

    ``delivery_id`` must be the same for every redelivery of the same platform event (Slack
    ``event_id``, Discord interaction/message id), because the core records it under a unique
    constraint before any work starts: that is what makes a retried delivery produce one reply.
    ``command`` is set when the user invoked a command (``/math``, ``:math`` ...), with its
    arguments in ``args``; ``text`` is then the command's main free-text argument. Every string
    is passed through :func:`clean_text` on construction, whichever adapter built it.
    """

    platform: str
    workspace: str
    channel: str
    thread: str
    user: str
    text: str
    delivery_id: str
    command: str | None = None
    args: Mapping[str, str] = field(default_factory=_frozen_mapping)
    user_name: str | None = None
    user_roles: frozenset[str] = frozenset()
    is_direct: bool = False
    # The person running botkit on this machine (the console's ``[console] operator``): access
    # rules do not apply to them; they hold the configuration and the database anyway.
    is_operator: bool = False
    received_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        for name in ("platform", "workspace", "channel", "thread", "user", "text", "delivery_id"):
            object.__setattr__(self, name, clean_text(getattr(self, name)))
        for name in ("command", "user_name"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, clean_text(value))
        args = {clean_text(k): clean_text(v) for k, v in dict(self.args).items()}
        object.__setattr__(self, "args", _frozen_mapping(args))
        object.__setattr__(self, "user_roles", frozenset(clean_text(r) for r in self.user_roles))

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.platform, self.workspace, self.channel, self.thread)


Vote = Literal["up", "down"]
"""A 👍 (``up``) or 👎 (``down``) on a final reply."""

VOTES: tuple[str, ...] = get_args(Vote)


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """A user's 👍/👎 click on the final reply of a model turn, stripped of platform specifics.

    ``turn_id`` is the id the core gave the adapter with the buttons
    (:meth:`LiveReply.edit_with_feedback`): the adapter carries it in the button (a Slack
    button's ``value``, a Discord ``custom_id``) and reads it back on the click, so a click on a
    reply a previous process posted still finds its turn. ``delivery_id`` must be the same for
    every redelivery of the same click (Slack: user and ``action_ts``; Discord: the interaction
    id): the core claims it like a message's, so a redelivered click is counted once.
    """

    platform: str
    workspace: str
    channel: str
    user: str
    turn_id: int
    vote: Vote
    delivery_id: str
    received_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.vote not in VOTES:
            raise ValueError(f"a vote is one of {', '.join(VOTES)}, not {self.vote!r}")
        if not isinstance(self.turn_id, int) or isinstance(self.turn_id, bool) or self.turn_id < 1:
            raise ValueError(f"a feedback turn id is a positive integer, not {self.turn_id!r}")
        for name in ("platform", "workspace", "channel", "user", "delivery_id"):
            object.__setattr__(self, name, clean_text(getattr(self, name)))


#: The kinds of platform call a reply makes, each with its own rate limit on the platforms botkit
#: serves (Slack: ``chat.update`` is Tier 3 per workspace, ``chat.postMessage`` about 1/s per
#: channel, ``chat.delete`` Tier 3, ``assistant.threads.setStatus`` its own): see
#: :meth:`LiveReply.rate_scope`.
CallKind = Literal["edit", "post", "delete", "status"]

#: How a reply shows that it is coming (``[slack] progress``): ``message`` always posts a
#: placeholder and edits it; ``status`` shows a status line (:meth:`LiveReply.show_status`) and
#: posts only the final answer; ``auto`` does the latter only when the edit budget cannot give
#: every live reply in its scope its edits (:meth:`botkit.streaming.budget.EditBudget.crowded`).
ProgressMode = Literal["auto", "message", "status"]


@dataclass(frozen=True, slots=True)
class RateScope:
    """One rate limit: every call with the same ``key`` draws on one budget of ``per_second``
    calls (None: no limit) with ``burst`` back to back. With ``window`` = (calls, seconds) the
    platform's limit is a count in any rolling window (Slack's Tier 3 "per minute"): finals may
    spend what the window has left at once, partial edits keep the ``per_second`` pace
    (:class:`~botkit.streaming.window.WindowBudget`)."""

    key: str
    per_second: float | None
    burst: int = 1
    window: tuple[int, float] | None = None
    #: tokens a call that is not a final (a streaming edit) leaves for the finals, once the
    #: budget holds more than one (so the next final never queues behind partial edits)
    reserve: int = 0
    #: the platform's own numbers for this scope, where the adapter reads them (see
    #: :mod:`botkit.ratefeed`); not part of the scope's identity
    feed: RateFeed | None = field(default=None, compare=False, hash=False)
    #: the scope lives with one reply (a Discord interaction's token, 15 minutes at most): the
    #: core keeps its budget only while the reply (or its feed) holds it, so that finished
    #: replies' budgets do not pile up (:class:`~botkit.streaming.budget.BudgetRegistry`)
    transient: bool = False


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with a final reply (a PNG of its formulas), as every adapter gets it.

    ``alt_text`` describes it for screen readers and for adapters that cannot attach files.
    """

    data: bytes = field(repr=False)
    filename: str
    mime: str
    alt_text: str = ""


class LiveReply(ABC):
    """The adapter's side of one reply: a message (or several) that the core keeps editing.

    The core's :class:`~botkit.streaming.streamer.ReplyStreamer` decides *when* and *what* to send; the
    adapter only knows *how*. ``max_chars`` is the platform's per-message limit and ``rate_key``
    names the scope of the platform's edit rate limit (a Slack workspace, a Discord channel): all
    replies with the same key share one budget of ``edit_rate`` edits per second (None: no
    limit). Methods make one attempt and report a rate limit as :class:`RateLimited` and a
    5xx, reset connection or timeout as :class:`TransientPlatformError`; they never sleep and
    retry themselves. The core retries (:mod:`botkit.streaming.retry`): the placeholder, the final
    edit and its continuations until they land; a streaming edit is superseded by the next one.
    """

    max_chars: int = 4000
    rate_key: str = "default"
    edit_rate: float | None = None  # edits per second allowed in the whole rate_key scope
    edit_burst: int = 1
    #: True where :meth:`edit_with_feedback` shows 👍/👎 buttons; the core asks only then.
    feedback_buttons: bool = False

    #: The adapter can post the final text as a new message and delete the first one (see
    #: :meth:`delete`): the core does so when the edit budget is backed up and posting is not.
    can_replace: bool = False

    can_attach: bool = False  # True where :meth:`attach` can show a file (not drawn otherwise)

    #: True where :meth:`show_status` can show a status line beside the conversation instead of a
    #: placeholder message (Slack: ``assistant.threads.setStatus`` in a thread). The core uses it
    #: when the edit budget is too short to stream this reply (see :data:`ProgressMode`).
    can_show_status: bool = False
    #: :meth:`post_with_feedback` is one call (safe to retry): the core posts a final's new
    #: last message with its buttons instead of posting it and then editing the buttons in.
    posts_with_buttons: bool = False
    progress: ProgressMode = "auto"
    status_text: str = "is thinking…"

    #: Set by the core before the placeholder (the turn's id) and before the final view (its
    #: role "final"): an adapter whose platform keeps readable data with a message puts it on
    #: every message it posts or edits (Slack: metadata), so the restart pass can find a turn's
    #: messages that were never recorded (:mod:`botkit.markers`). None: nothing to mark.
    marker: ReplyMarker | None = None

    #: Set by :meth:`post_placeholder` where the platform handed back a message posted before
    #: instead of posting a new one (Discord: a turn's first message carries a ``nonce`` made
    #: from its marker, with ``enforce_nonce``; for a few minutes Discord answers another post
    #: with that nonce with the message it created then): what that message shows now. The
    #: streamer then edits it to what it meant to show (a retried post whose first response was
    #: lost); the restart pass's note for a turn whose placeholder was never recorded finds that
    #: placeholder so (:mod:`botkit.repair`) and repairs it instead of posting beside it.
    handed_back: ShownMessage | None = None

    #: Set by the restart pass before the note it posts as a turn's first message, where that
    #: turn was started by an older botkit (:func:`botkit.leftovers.started_by_older`): an
    #: adapter that keys a turn's first message (Discord: its ``nonce``) differently from that
    #: botkit keys this one as it did, so that the platform hands back the message that botkit
    #: posted (:attr:`handed_back`). The default: keyed as this botkit keys its own.
    older_turn: bool = False

    def moves(self, message_id: str) -> bool:
        """Whether this reply's message ``message_id`` is shown, or on its next edit will be,
        by another message the reply posted in its place, whose id the core never learns (a
        Discord slash reply past its interaction token goes on in the channel, its response
        retired to "continues below"). The final view's intent records that its first message
        is then not one the turn recorded: only for such a view does the restart look for that
        message by its text (:mod:`botkit.repair`), where another turn's identical answer could
        otherwise pass for it. The default: never."""
        return False

    #: Set by the core once the turn is recorded: an adapter that leaves a message of this reply
    #: showing its text *without* the turn's marker (Slack: a native stream whose stop and
    #: marking ``chat.update`` were both refused) awaits it with the message's id, and the core
    #: keeps a durable record of it (the spool's unmarked streams), so that the next start or a
    #: sweep marks it, and meanwhile no other turn's restart takes it for its own.
    #: The second argument says whether the refused marking carried the final's 👍/👎: the
    #: later marking gives them (:func:`botkit.repair.repair_leftover`, ``[feedback] enabled``).
    left_unmarked: Callable[[str, bool], Awaitable[None]] | None = None

    def rendered(self, text: str) -> str:
        """The text the platform will show for a message sent as ``text`` (after this adapter's
        conversion: Slack mrkdwn), as a read back returns it: the restart pass compares it
        with what it reads to tell whether the final view was applied."""
        return text

    def rendered_view(self, chunks: Sequence[str]) -> list[str]:
        """What the platform will show for a view of ``chunks`` (one per message, first to last),
        as a read back returns it: the final view's intent (the restart pass compares it with
        what it reads). Each chunk :meth:`rendered` by default; an adapter whose first message
        is shown another way (Slack's native stream: its Markdown) says so here."""
        return [self.rendered(chunk) for chunk in chunks]

    def rendered_views(self, chunks: Sequence[str]) -> list[list[str]]:
        """Every form the platform may show the view of ``chunks`` in, as read back, the one
        expected first (:meth:`rendered_view`): what the final view's intent records. An adapter
        whose call may fall back to another form after the intent was spooled (Slack: a refused
        ``chat.startStream`` or ``chat.stopStream``, then ``chat.update`` in mrkdwn) lists that
        one too, so the restart pass finds the view shown whichever form it took."""
        return [self.rendered_view(chunks)]

    def rate_scope(self, kind: CallKind) -> RateScope:
        """The rate limit a call of ``kind`` draws on (the placeholder and continuations are
        ``post``). The default: every kind shares the edit scope (``rate_key``, ``edit_rate``,
        ``edit_burst``), as on Discord, whose library reads the per-route buckets itself. An
        adapter whose platform limits methods separately (Slack) gives each its own, so that a
        placeholder never waits behind edits."""
        return RateScope(self.rate_key, self.edit_rate, self.edit_burst)

    @property
    def scope_epoch(self) -> int:
        """Changes whenever :meth:`rate_scope`'s answers change while the reply lives (a Discord
        slash command's reply that outlived its interaction token goes on in the channel, on
        the channel's buckets). The streamer compares it before each view it shows and
        re-reads the scopes when it moved, so the calls after the move draw on the budgets of
        where they go; a number, so that the check costs nothing per edit. The default: never."""
        return 0

    def edit_kind(self, message_id: str) -> CallKind:
        """The kind of call (the budget) an :meth:`edit` of ``message_id`` now is on the
        platform. Nearly always ``edit``; a Discord slash reply whose token aged out cannot
        edit its webhook message any more and posts its text in the channel instead (its
        first channel message), which Discord counts on the channel's ``POST /messages``
        bucket: ``post`` then, so that the streamer draws that call on the post budget, as
        every other first message. The default: ``edit``."""
        return "edit"

    def measure(self, text: str) -> int:
        """Length of ``text`` as the platform counts it after this adapter's conversion.

        The core splits the model's Markdown so that every message measures at most
        ``max_chars``; an adapter that converts (Slack's mrkdwn escapes ``&<>``) overrides this.
        """
        return len(text)

    @abstractmethod
    async def post_placeholder(self, text: str) -> str:
        """Show the first message of the reply at once; return its platform message id."""

    @abstractmethod
    async def edit(self, message_id: str, text: str) -> None:
        """Replace the text of a message this reply posted."""

    @abstractmethod
    async def post_continuation(self, text: str) -> str:
        """Post one more message after the last one (the answer outgrew ``max_chars``)."""

    async def edit_with_feedback(self, message_id: str, text: str, turn_id: int) -> None:
        """The final edit of the LAST message of a complete model answer: ``text`` with 👍/👎
        buttons that carry ``turn_id`` (a click comes back as a :class:`FeedbackEvent`).

        Called only where :attr:`feedback_buttons` is True, once per answer, and also when the
        text did not change (the buttons are new). Never on a partial view, an error, a
        refusal or a command's reply. Retried like every final edit, so it must be safe to
        call again. The default is a plain :meth:`edit`.
        """
        await self.edit(message_id, text)

    async def show_status(self, text: str) -> bool:
        """Show ``text`` as the conversation's status line instead of a placeholder message (only
        called where :attr:`can_show_status` is True, on the ``status`` rate scope). The platform
        clears it when the reply's first message is posted. Return False if the platform refused
        (the core posts a placeholder instead); raise :class:`RateLimited` /
        :class:`TransientPlatformError` to have it retried."""
        return False

    async def post_with_feedback(self, text: str, turn_id: int) -> str:
        """Post ``text`` as the reply's next (last) message with its 👍/👎 buttons; return its id.

        The final answer of a reply that shows a status line (or whose final is posted anew)
        is one post, not a post and then a queued edit. The default is those two calls; an
        adapter whose platform posts with buttons in one call (Slack) overrides it, so that a
        retry never posts twice.
        """
        message_id = await self.post_continuation(text)
        await self.edit_with_feedback(message_id, text, turn_id)
        return message_id

    async def post_notice(self, text: str) -> bool:
        """Show a short notice (a refusal, a usage hint) to the asker alone, if the platform can.

        Return False (the default) to have the core show it as an ordinary reply instead, also
        when the platform refused it; raise :class:`RateLimited` / :class:`TransientPlatformError`
        to have the core retry it (so it must be safe to call again after a partial failure).
        Discord answers with an ephemeral message; Slack with ``chat.postEphemeral``.
        """
        return False

    async def delete(self, message_id: str) -> None:
        """Delete a message this reply posted (only called where :attr:`can_replace` is True:
        the final text was posted as a new message, and this removes the placeholder). One
        attempt, errors reported like every other call."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete messages")

    async def attach(self, attachment: Attachment) -> bool:
        """Show ``attachment`` with the reply, after its final text landed (called only where
        :attr:`can_attach` is True, so nothing is drawn for a platform that cannot show it) (Slack: an upload into
        the thread; Discord: a message attachment). Return False (the default) where the
        platform cannot show files: the text alone is the answer. Raise :class:`RateLimited` /
        :class:`TransientPlatformError` to have the core retry it; any other error is logged and
        the reply stays as it is (an upload never turns an answer into an error).
        """
        return False

    async def finish(self) -> None:
        """Called after the final edit landed (close a native stream, clear a status...); called
        again if it raised :class:`TransientPlatformError`."""
        return None

    async def fail(self, error: str) -> None:
        """Called once, instead of :meth:`finish`, when the reply ended in an error.

        The error text is already visible in the reply's last message (the streamer put it there,
        after whatever partial answer was shown); override to add a platform touch such as an
        ephemeral notice or a reaction.
        """
        await self.finish()


class TransientPlatformError(Exception):
    """Raised by a :class:`LiveReply` method when the call may succeed if made again: an HTTP 5xx,
    a reset connection, a timeout. Adapters map their SDK's errors to this (or to
    :class:`RateLimited`) and never retry themselves: the core's one retry policy
    (:mod:`botkit.streaming.retry`) decides. Anything else an adapter raises is a refusal
    (``channel_not_found``, 403) and is not retried.
    """


class RateLimited(TransientPlatformError):
    """Raised by a :class:`LiveReply` method when the platform answered "slow down" (HTTP 429).

    The core pauses the scope's shared edit budget for ``retry_after`` seconds, so every reply
    with the same ``rate_key`` holds off, and a retried call waits for that budget.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.2f}s")
        self.retry_after = retry_after
