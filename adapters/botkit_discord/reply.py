"""Live replies on Discord: an interaction's response, or messages in a channel or thread.

The core's streamer decides when to post and edit; these classes only know how. Every Discord
call goes through :func:`platform_call`, which turns Discord's "slow down" (discord.py's
``RateLimited``, or an ``HTTPException`` with status 429 that it did not retry itself) into the
core's :class:`~botkit.events.RateLimited`, so the shared edit budget pauses and the final edit
is retried until it lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

from botkit.events import LiveReply, RateLimited

log = logging.getLogger("botkit_discord.reply")

T = TypeVar("T")

PLACEHOLDER_ATTEMPTS = 5
CONTINUED_NOTE = "_This answer took longer than an interaction reply may last; it continues below._ ⬇️"


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


async def platform_call(call: Callable[[], Awaitable[T]]) -> T:
    """Await one Discord call, mapping rate limits to :class:`RateLimited`."""
    try:
        return await call()
    except (discord.RateLimited, discord.HTTPException) as err:
        limited = rate_limit_of(err)
        if limited is not None:
            raise limited from err
        raise


async def must_land(call: Callable[[], Awaitable[T]], attempts: int = PLACEHOLDER_ATTEMPTS) -> T:
    """Like :func:`platform_call`, but wait out rate limits and retry (for the first message,
    which the core's streamer does not retry)."""
    for _ in range(attempts - 1):
        try:
            return await platform_call(call)
        except RateLimited as limited:
            log.info("rate limited; retrying in %.2fs", limited.retry_after)
            await asyncio.sleep(limited.retry_after)
    return await platform_call(call)


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


class _DiscordReply(LiveReply):
    def __init__(self, *, channel_id: int, max_chars: int, edits_per_second: float) -> None:
        self.max_chars = max_chars
        self.rate_key = f"discord:{channel_id}"
        self.edit_rate = edits_per_second
        self.edit_burst = 1


OpenChannel = Callable[[], Awaitable[tuple[discord.PartialMessageable, discord.MessageReference | None]]]


class DiscordMessageReply(_DiscordReply):
    """A reply made of ordinary messages in a channel, thread or DM (answers to @mentions).

    The first message optionally replies to (references) the user's message, without pinging.
    ``open_channel``, if given, is awaited once before the first message and says where the reply
    goes: a mention's thread is started there, only once the core has claimed the delivery, so a
    redelivered message never starts a second thread. Notices are not private on this path
    (:meth:`post_notice` returns False): they are shown as the reply, like any answer.
    """

    def __init__(
        self,
        channel: discord.PartialMessageable,
        *,
        reference: discord.MessageReference | None = None,
        open_channel: OpenChannel | None = None,
        max_chars: int,
        edits_per_second: float,
    ) -> None:
        super().__init__(channel_id=channel.id, max_chars=max_chars, edits_per_second=edits_per_second)
        self.channel = channel
        self.reference = reference
        self._open_channel = open_channel

    async def post_notice(self, text: str) -> bool:
        return False  # a message cannot be private to one member: the core posts it as the reply

    async def post_placeholder(self, text: str) -> str:
        if self._open_channel is not None:
            self.channel, self.reference = await self._open_channel()
            self._open_channel = None
        reference = self.reference

        async def send() -> discord.Message:
            if reference is None:
                return await self.channel.send(text)
            return await self.channel.send(text, reference=reference, mention_author=False)

        message = await must_land(send)
        return str(message.id)

    async def edit(self, message_id: str, text: str) -> None:
        partial = self.channel.get_partial_message(int(message_id))
        await platform_call(lambda: partial.edit(content=text))

    async def post_continuation(self, text: str) -> str:
        message = await platform_call(lambda: self.channel.send(text))
        return str(message.id)


class DiscordInteractionReply(_DiscordReply):
    """The reply to a slash command: the (already deferred) original response, then follow-ups.

    An interaction token can edit its messages for 15 minutes. After ``reply_seconds`` (a margin
    short of that) the reply goes on as normal channel messages: a webhook message that still
    needs an edit is edited once more to say the answer continues below, and its new text is
    posted in the channel; later continuations are channel messages too.
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
    ) -> None:
        super().__init__(channel_id=channel.id, max_chars=max_chars, edits_per_second=edits_per_second)
        self.interaction = interaction
        self.channel = channel
        self._deadline = interaction.created_at.timestamp() + reply_seconds
        self._clock = clock
        self._original_id: str | None = None
        self._followups: set[str] = set()
        self._moved: dict[str, int] = {}  # webhook message id -> channel message id that replaced it
        self._original_deleted = False  # the "thinking" response was deleted to show a notice

    @property
    def token_fresh(self) -> bool:
        return self._clock() < self._deadline

    async def post_notice(self, text: str) -> bool:
        """Show ``text`` to the member alone: an ephemeral follow-up.

        The command was deferred publicly ("thinking…"), and a deferral's ephemeral state cannot
        change: the first follow-up after it would only edit the public loading message, its
        ephemeral flag ignored. So the loading message is deleted first, unless an answer already
        replaced it. Returns False (the core then shows the notice as a normal reply) when the
        token is too old or Discord refused.
        """
        if not self.token_fresh:
            return False
        if self._original_id is None and not self._original_deleted:
            try:
                await must_land(self.interaction.delete_original_response)
            except (discord.HTTPException, RateLimited) as err:
                log.info("could not delete the deferred response of %s: %s", self.interaction.id, err)
                return False
            self._original_deleted = True
        followup = self.interaction.followup

        async def send(part: str) -> None:
            await must_land(lambda: followup.send(part, ephemeral=True, wait=True))

        try:
            for part in notice_parts(text, self.max_chars):
                await send(part)
        except (discord.HTTPException, RateLimited) as err:
            log.warning("could not send an ephemeral notice for %s: %s", self.interaction.id, err)
            return False
        return True

    async def post_placeholder(self, text: str) -> str:
        if not self.token_fresh:
            return await self._post_in_channel(text)
        if self._original_deleted:  # a notice failed after the loading message was deleted
            followup = self.interaction.followup
            posted = await must_land(lambda: followup.send(text, wait=True))
            self._followups.add(str(posted.id))
            return str(posted.id)
        message = await must_land(lambda: self.interaction.edit_original_response(content=text))
        self._original_id = str(message.id)
        return self._original_id

    async def edit(self, message_id: str, text: str) -> None:
        if message_id in self._moved:
            partial = self.channel.get_partial_message(self._moved[message_id])
            await platform_call(lambda: partial.edit(content=text))
        elif message_id not in self._followups and message_id != self._original_id:
            partial = self.channel.get_partial_message(int(message_id))  # posted in the channel
            await platform_call(lambda: partial.edit(content=text))
        elif not self.token_fresh:
            await self._retire(message_id)
            self._moved[message_id] = int(await self._post_in_channel(text))
        elif message_id == self._original_id:
            await platform_call(lambda: self.interaction.edit_original_response(content=text))
        else:
            followup = self.interaction.followup
            await platform_call(lambda: followup.edit_message(int(message_id), content=text))

    async def post_continuation(self, text: str) -> str:
        if not self.token_fresh:
            return await self._post_in_channel(text)
        followup = self.interaction.followup
        message = await platform_call(lambda: followup.send(text, wait=True))
        self._followups.add(str(message.id))
        return str(message.id)

    async def _post_in_channel(self, text: str) -> str:
        message = await must_land(lambda: self.channel.send(text))
        return str(message.id)

    async def _retire(self, message_id: str) -> None:
        """Point a webhook message at its replacement below, while the token may still work."""
        try:
            if message_id == self._original_id:
                await self.interaction.edit_original_response(content=CONTINUED_NOTE)
            else:
                await self.interaction.followup.edit_message(int(message_id), content=CONTINUED_NOTE)
        except discord.HTTPException as err:  # the token may already be gone; the answer goes on
            log.info("could not mark interaction message %s as continued: %s", message_id, err)
