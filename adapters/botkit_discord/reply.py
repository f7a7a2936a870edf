"""Live replies on Discord: an interaction's response, or messages in a channel or thread.

The core's streamer decides when to post and edit; these classes only know how. Every Discord
call is made once, through :func:`platform_call`, which turns Discord's "slow down" (discord.py's
``RateLimited``, or an ``HTTPException`` with status 429 that it did not retry itself) into the
core's :class:`~botkit.events.RateLimited`, and a server error or lost connection into
:class:`~botkit.events.TransientPlatformError`: the core's retry policy pauses the channel's
budget and decides what to try again. (discord.py itself still waits out a 429 of at most 30 s
that carries ``Via``, and retries some 5xx answers a few times, inside the call; that cannot be
turned off.) Other errors (403, 404, a bad request) are refusals and stay ``HTTPException``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import discord

from botkit.events import Attachment, CallKind, LiveReply, RateLimited, RateScope, TransientPlatformError
from botkit.markers import ShownMessage
from botkit.ratefeed import RateFeed
from botkit_discord.feedback import feedback_view
from botkit_discord.ratelimits import RouteLimits, route_key, webhook_key

log = logging.getLogger("botkit_discord.reply")

T = TypeVar("T")

CONTINUED_NOTE = "_This answer took longer than an interaction reply may last; it continues below._ ⬇️"


def first_nonce(turn: int, channel_id: int, question: str | None = None) -> str:
    """The ``nonce`` of a turn's first message in ``channel_id`` (at most 25 characters:
    ``bk`` and 16 hex digits; discord.py sends ``enforce_nonce`` with it). Discord: "If another
    message was created by the same author with the same nonce [in the past few minutes], that
    message will be returned and no new message will be created": a retried post whose response
    was lost posts no second placeholder, and the restart's note for a turn whose placeholder
    was never recorded (posted where that placeholder went) gets it back instead
    (:attr:`~botkit.events.LiveReply.handed_back`), while Discord remembers it. The channel is
    part of it (Discord does not say whether the check is per channel), so that what is handed
    back is always a message of that channel.

    ``question`` is the turn's delivery id (the question's message id, or an interaction's),
    which the turn's row stores (:attr:`botkit.leftovers.Leftover.question`): a database
    recreated, or another one behind the same bot, numbers its turns from 1 again, and the
    turn id alone would have Discord hand a new turn's first post an old turn's message; a
    Discord snowflake is never repeated, and a restart of the same turn has the same one."""
    digest = hashlib.blake2s(f"{turn}:{channel_id}:{question or ''}".encode(), digest_size=8).hexdigest()
    return f"bk{digest}"


def older_nonce(turn: int, channel_id: int) -> str:
    """The nonce a botkit older than the question in :func:`first_nonce` gave a turn's first
    message (turn and channel only): the restart's note for a turn that botkit started
    (:attr:`~botkit.events.LiveReply.older_turn`) carries it, so that Discord, while it
    remembers it, hands back the placeholder that botkit posted and never recorded."""
    digest = hashlib.blake2s(f"{turn}:{channel_id}".encode(), digest_size=8).hexdigest()
    return f"bk{digest}"


def rate_limit_of(err: BaseException) -> RateLimited | None:
    """The core's RateLimited for a discord.py rate-limit error, or None for any other error."""
    if isinstance(err, discord.RateLimited):
        return RateLimited(err.retry_after)
    if isinstance(err, discord.HTTPException) and err.status == 429:
        headers = err.response.headers
        for name in ("Retry-After", "X-RateLimit-Reset-After"):
            value = headers.get(name)
            if value is None:
                continue
            try:
                return RateLimited(max(0.0, float(value)))
            except ValueError:
                continue
        return RateLimited(1.0)
    return None


def platform_error(err: BaseException) -> TransientPlatformError | None:
    """The core's typed error for a failed Discord call, or None for a refusal (not retried)."""
    limited = rate_limit_of(err)
    if limited is not None:
        return limited
    if isinstance(err, discord.DiscordServerError) or (
        isinstance(err, discord.HTTPException) and err.status >= 500
    ):
        return TransientPlatformError(f"Discord answered HTTP {err.status}")
    if isinstance(err, aiohttp.ClientError | TimeoutError | ConnectionError):
        return TransientPlatformError(f"Discord unreachable: {type(err).__name__}: {err}")
    return None


async def platform_call(call: Callable[[], Awaitable[T]]) -> T:
    """Await one Discord call, reporting a rate limit or transient failure as the core's type."""
    try:
        return await call()
    except (discord.RateLimited, discord.HTTPException, aiohttp.ClientError, OSError) as err:
        typed = platform_error(err)
        if typed is not None:
            raise typed from err
        raise


def notice_parts(text: str, limit: int) -> list[str]:
    """A notice cut at line ends into messages of at most ``limit`` characters (long lines are cut)."""
    parts: list[str] = []
    current = ""
    for line in text.splitlines() or [""]:
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            candidate = line
        current = candidate
    if current or not parts:
        parts.append(current or "…")
    return parts


def shown_as(text: str) -> str:
    """``text`` as Discord keeps it in a message's content: leading and trailing whitespace
    stripped on create and edit. Not in Discord's documentation; reported by bot developers
    ("discord strips all trailing whitespace": strinking/futaba#273), and a content of only a
    newline is refused as empty (code 50006: NITKC-DEV/Kisarazu-Multi-Manager#32). Texts that
    differ only there show the same on Discord, so comparing this form confuses nothing that
    Discord does not show alike."""
    return text.strip()


class _DiscordReply(LiveReply):
    feedback_buttons = True  # 👍/👎 components on the final message (botkit_discord.feedback)
    can_attach = True  # a message with the file, after the answer

    def __init__(self, *, channel_id: int, max_chars: int, edits_per_second: float) -> None:
        self.max_chars = max_chars
        self.rate_key = f"discord:{channel_id}"
        self.edit_rate = edits_per_second
        self.edit_burst = 1

    def rendered(self, text: str) -> str:
        """Discord keeps a message's content with its leading and trailing whitespace stripped
        (:func:`shown_as`), so a chunk ending in a space or newline
        (``split_message`` cuts there) reads back without it: the final view's intent records
        that form, which the restart pass compares with what it reads."""
        return shown_as(text)

    async def edit(self, message_id: str, text: str) -> None:
        await self._edit(message_id, text, None)

    async def edit_with_feedback(self, message_id: str, text: str, turn_id: int) -> None:
        """The final edit, with the 👍/👎 action row in the same PATCH."""
        await self._edit(message_id, text, feedback_view(turn_id))

    @abstractmethod
    async def _edit(self, message_id: str, text: str, view: discord.ui.View | None) -> None:
        """Edit one of the reply's messages (with ``view``: its components too)."""

    async def attach(self, attachment: Attachment) -> bool:
        """A message with ``attachment`` (multipart ``files[0]`` + ``payload_json``) right after
        the answer, where the answer is: an interaction's follow-up while its token is fresh,
        else the channel or thread. A refusal (403: no Attach Files permission) is False."""
        try:
            await platform_call(lambda: self._send_file(_file_of(attachment)))
        except discord.HTTPException as err:
            log.warning("Discord refused the attachment %s: %s", attachment.filename, err)
            return False
        return True

    @abstractmethod
    async def _send_file(self, file: discord.File) -> None:
        """Send ``file`` where the answer is (see :meth:`attach`)."""


def _file_of(attachment: Attachment) -> discord.File:
    """A fresh :class:`discord.File` per attempt (a sent one has read its bytes)."""
    return discord.File(
        io.BytesIO(attachment.data),
        filename=attachment.filename,
        description=attachment.alt_text[:1024] or None,
    )


OpenChannel = Callable[[], Awaitable[tuple[discord.PartialMessageable, discord.MessageReference | None]]]


class DiscordMessageReply(_DiscordReply):
    """A reply made of ordinary messages in a channel, thread or DM (answers to @mentions).

    The first message optionally replies to (references) the user's message, without pinging.
    ``open_channel``, if given, is awaited once before the first message and says where the reply
    goes: a mention's thread is started there, only once the core has claimed the delivery, so a
    redelivered message never starts a second thread. A message cannot be private to one member,
    so a notice (a refusal) goes to the asker by direct message where ``private`` is given (a
    mention in a server channel); where the member does not accept DMs, :meth:`post_notice`
    returns False and the core shows it as the reply.
    """

    def __init__(
        self,
        channel: discord.PartialMessageable,
        *,
        reference: discord.MessageReference | None = None,
        open_channel: OpenChannel | None = None,
        private: Callable[[str], Awaitable[object]] | None = None,
        max_chars: int,
        edits_per_second: float,
        limits: RouteLimits | None = None,
        route_channel: int | None = None,
        question: str | None = None,
    ) -> None:
        super().__init__(channel_id=channel.id, max_chars=max_chars, edits_per_second=edits_per_second)
        self.channel = channel
        self.reference = reference
        self.question = question  # the turn's delivery id: part of its first message's nonce
        self._open_channel = open_channel
        self._private = private
        self._limits = limits
        self._route_channel = route_channel or channel.id
        self._probed = False  # an older turn's first post tried with first_nonce (post_placeholder)

    def rate_scope(self, kind: CallKind) -> RateScope:
        """With ``limits``: Discord's own bucket of ``kind`` calls in the channel (or thread,
        ``route_channel``) the messages go to, fed from the response headers; the edit budget
        keeps a token back for the final texts. Without: one budget for the channel."""
        if self._limits is None:
            return super().rate_scope(kind)
        key = route_key(self._route_channel, kind)
        reserve = 1 if kind == "edit" else 0
        return RateScope(key, self.edit_rate, self.edit_burst, reserve=reserve, feed=self._limits.feed(key))

    async def post_notice(self, text: str) -> bool:
        """A DM to the asker (``private``); False (the core replies openly) without one, or when
        the member does not accept DMs (403). A 429 or transient failure is raised to be retried."""
        if self._private is None:
            return False
        private = self._private
        try:
            await platform_call(lambda: private(text[:2000]))
        except discord.Forbidden as err:
            log.info("cannot DM the notice (HTTP %s, code %s); replying in the channel", err.status, err.code)
            return False
        return True

    async def post_placeholder(self, text: str) -> str:
        """The reply's first message; with a marker (the core's turns and the restart's notes),
        with the turn's :func:`first_nonce`: where Discord hands back the message it created
        with that nonce (its content is not ``text``), :attr:`handed_back` says what it shows.

        For a turn an older botkit started (:attr:`older_turn`) nothing in the database says
        which nonce that botkit used: botkit up to e265f4f used :func:`first_nonce` (with
        untagged worker ids), the one before it :func:`older_nonce`. So :func:`first_nonce` is
        tried first; where Discord creates a new message instead of handing one back, that
        message is deleted and the post made again with :func:`older_nonce` (once: a retry of
        this call after that goes straight to it). A deletion refused keeps the new message as
        the reply's first: never a second copy of it."""
        await self._opened()
        marker, channel = self.marker, self.channel
        if marker is None:
            return await self._send(text, None)
        if not self.older_turn or self._probed:
            return await self._send(text, self._nonce(marker.turn, channel.id))
        message_id = await self._send(text, first_nonce(marker.turn, channel.id, self.question))
        if self.handed_back is not None:
            return message_id
        self._probed = True
        try:
            await platform_call(lambda: channel.get_partial_message(int(message_id)).delete())
        except Exception:
            log.warning("could not delete the note posted with this botkit's nonce; kept", exc_info=True)
            return message_id
        return await self._send(text, older_nonce(marker.turn, channel.id))

    async def _send(self, text: str, nonce: str | None) -> str:
        """One post of the first message (with ``nonce``: a message handed back is noted)."""
        channel, reference = self.channel, self.reference
        extra: dict[str, Any] = {} if nonce is None else {"nonce": nonce}
        if reference is not None:
            extra |= {"reference": reference, "mention_author": False}
        message = await platform_call(lambda: channel.send(text, **extra))
        if nonce is not None and shown_as(message.content) != shown_as(text):  # Discord trims it
            self.handed_back = ShownMessage(str(message.id), message.content)
        return str(message.id)

    def _nonce(self, turn: int, channel_id: int) -> str:
        """The first message's nonce: :func:`first_nonce`, or for a turn an older botkit started
        whose :func:`first_nonce` post was not handed back (:meth:`post_placeholder`) the one
        the botkit before the question in it gave it (:func:`older_nonce`)."""
        return (
            older_nonce(turn, channel_id) if self.older_turn else first_nonce(turn, channel_id, self.question)
        )

    async def _edit(self, message_id: str, text: str, view: discord.ui.View | None) -> None:
        partial = self.channel.get_partial_message(int(message_id))
        await platform_call(lambda: _edit_message(partial, text, view))

    async def _opened(self) -> None:
        """Where the reply goes, once (``open_channel``): before its first message, or before a
        continuation posted first (the restart finishing a note cut by a kill after its first
        message: :func:`botkit.repair._told_already`), so that it lands beside that message."""
        if self._open_channel is not None:
            self.channel, self.reference = await self._open_channel()
            self._open_channel = None

    async def post_continuation(self, text: str) -> str:
        await self._opened()
        message = await platform_call(lambda: self.channel.send(text))
        return str(message.id)

    async def _send_file(self, file: discord.File) -> None:
        await self.channel.send(file=file)


class DiscordInteractionReply(_DiscordReply):
    """The reply to a slash command: the (already deferred) original response, then follow-ups.

    An interaction token can edit its messages for 15 minutes. After ``reply_seconds`` (a margin
    short of that) the reply goes on as normal channel messages: a webhook message that still
    needs an edit is edited once more to say the answer continues below, and its new text is
    posted in the channel; later continuations are channel messages too.

    With ``limits``, the reply draws on its interaction's own buckets (:meth:`rate_scope`), not
    on the channel's: twenty slash commands in one channel stream side by side.
    """

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        channel: discord.PartialMessageable,
        *,
        max_chars: int,
        edits_per_second: float,
        reply_seconds: float,
        clock: Callable[[], float] = time.time,
        limits: RouteLimits | None = None,
    ) -> None:
        super().__init__(channel_id=channel.id, max_chars=max_chars, edits_per_second=edits_per_second)
        self.interaction = interaction
        self.channel = channel
        self._limits = limits
        self._feeds: dict[str, RateFeed] = {}  # this interaction's feeds live as long as the reply
        self._deadline = interaction.created_at.timestamp() + reply_seconds
        self._clock = clock
        self._original_id: str | None = None
        self._followups: set[str] = set()
        self._moved: dict[str, int] = {}  # webhook message id -> channel message id that replaced it
        self._original_deleted = False  # the "thinking" response was deleted to show a notice
        self._notice_sent: dict[str, int] = {}  # notice text -> parts already sent

    @property
    def token_fresh(self) -> bool:
        return self._clock() < self._deadline

    @property
    def scope_epoch(self) -> int:
        """1 once the token has aged out (the reply goes on in the channel), else 0."""
        return 0 if self.token_fresh else 1

    def moves(self, message_id: str) -> bool:
        """A webhook message moved to the channel already, or to be moved on its next edit
        (the token has aged out: :meth:`_edit`)."""
        return message_id in self._moved or self.edit_kind(message_id) == "post"

    def rate_scope(self, kind: CallKind) -> RateScope:
        """With ``limits``: Discord's bucket of ``kind`` calls on this interaction's webhook
        routes, whose major parameter is the application id + the interaction token (one bucket
        per interaction: :func:`~botkit_discord.ratelimits.webhook_key`), fed from the response
        headers, a token kept back on the edit budget for the final texts. ``post`` is the
        follow-ups' bucket; the placeholder (the edit of the deferred response) is an edit on
        Discord, which the edit budget learns from the headers of its answer before any edit
        goes (edits wait for the placeholder). Asked once the token has aged out, the
        channel's own buckets, as a mention's reply: a reply that outlives its token while it
        streams moves to the channel (:meth:`_edit`), and :attr:`scope_epoch` tells the
        streamer to draw its calls from then on on the channel's budgets, shared with the
        other replies there. Without ``limits``: one budget for the channel."""
        limits = self._limits
        if limits is None:
            return super().rate_scope(kind)
        reserve = 1 if kind == "edit" else 0
        if not self.token_fresh:
            key = route_key(self.channel.id, kind)
            return RateScope(key, self.edit_rate, self.edit_burst, reserve=reserve, feed=limits.feed(key))
        interaction = self.interaction
        key = webhook_key(interaction.application_id, interaction.token, kind)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = limits.feed(key)
        return RateScope(key, self.edit_rate, self.edit_burst, reserve=reserve, feed=feed, transient=True)

    def edit_kind(self, message_id: str) -> CallKind:
        """``post`` for a webhook message not yet moved once the token has aged out: its next
        "edit" is the first channel message of the reply (:meth:`_edit`: ``POST
        /channels/{channel}/messages``, Discord's post bucket of the channel, shared with every
        reply's first message there), not an edit of the channel's; ``edit`` otherwise."""
        if self.token_fresh or message_id in self._moved or not self._on_webhook(message_id):
            return "edit"
        return "post"

    def _on_webhook(self, message_id: str) -> bool:
        """The message was sent through the interaction's token (its response or a follow-up)."""
        return message_id in self._followups or message_id == self._original_id

    async def post_notice(self, text: str) -> bool:
        """Show ``text`` to the member alone: an ephemeral follow-up.

        The command was deferred publicly ("thinking…"), and a deferral's ephemeral state cannot
        change: the first follow-up after it would only edit the public loading message, its
        ephemeral flag ignored. So the loading message is deleted first, unless an answer already
        replaced it. Returns False (the core then shows the notice as a normal reply) when the
        token is too old or Discord refused. A 429 or transient failure is raised for the core
        to retry; a retry skips the steps already done (the deletion, the parts already sent).
        """
        if not self.token_fresh:
            return False
        try:
            if self._original_id is None and not self._original_deleted:
                await platform_call(self.interaction.delete_original_response)
                self._original_deleted = True
            followup = self.interaction.followup
            parts = notice_parts(text, self.max_chars)
            for index in range(self._notice_sent.get(text, 0), len(parts)):
                await platform_call(functools.partial(followup.send, parts[index], ephemeral=True, wait=True))
                self._notice_sent[text] = index + 1
        except discord.HTTPException as err:
            log.warning("could not show an ephemeral notice for %s: %s", self.interaction.id, err)
            return False
        return True

    async def post_placeholder(self, text: str) -> str:
        if not self.token_fresh:
            return await self._post_in_channel(text)
        if self._original_deleted:  # a notice failed after the loading message was deleted
            followup = self.interaction.followup
            posted = await platform_call(lambda: followup.send(text, wait=True))
            self._followups.add(str(posted.id))
            return str(posted.id)
        message = await platform_call(lambda: self.interaction.edit_original_response(content=text))
        self._original_id = str(message.id)
        return self._original_id

    async def _edit(self, message_id: str, text: str, view: discord.ui.View | None) -> None:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if message_id in self._moved:
            partial = self.channel.get_partial_message(self._moved[message_id])
            await platform_call(lambda: _edit_message(partial, text, view))
        elif not self._on_webhook(message_id):
            partial = self.channel.get_partial_message(int(message_id))  # posted in the channel
            await platform_call(lambda: _edit_message(partial, text, view))
        elif not self.token_fresh:
            await self._retire(message_id)
            self._moved[message_id] = int(await self._post_in_channel(text, view))
        elif message_id == self._original_id:
            await platform_call(lambda: self.interaction.edit_original_response(content=text, **extra))
        else:
            followup = self.interaction.followup
            await platform_call(lambda: followup.edit_message(int(message_id), content=text, **extra))

    async def post_continuation(self, text: str) -> str:
        if not self.token_fresh:
            return await self._post_in_channel(text)
        followup = self.interaction.followup
        message = await platform_call(lambda: followup.send(text, wait=True))
        self._followups.add(str(message.id))
        return str(message.id)

    async def _send_file(self, file: discord.File) -> None:
        if self.token_fresh:
            await self.interaction.followup.send(file=file, wait=True)
        else:
            await self.channel.send(file=file)

    async def _post_in_channel(self, text: str, view: discord.ui.View | None = None) -> str:
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        message = await platform_call(lambda: self.channel.send(text, **extra))
        return str(message.id)

    async def _retire(self, message_id: str) -> None:
        """Point a webhook message at its replacement below, while the token may still work."""
        try:
            if message_id == self._original_id:
                await self.interaction.edit_original_response(content=CONTINUED_NOTE)
            else:
                await self.interaction.followup.edit_message(int(message_id), content=CONTINUED_NOTE)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as err:  # the token may be gone
            log.info("could not mark interaction message %s as continued: %s", message_id, err)


async def _edit_message(partial: discord.PartialMessage, text: str, view: discord.ui.View | None) -> object:
    """``PATCH /channels/{channel}/messages/{message}``: the text, and the buttons when given
    (left out otherwise, so that an edit keeps what the message shows)."""
    if view is None:
        return await partial.edit(content=text)
    return await partial.edit(content=text, view=view)
