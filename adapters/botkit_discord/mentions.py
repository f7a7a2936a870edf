"""Messages that address the bot: @mentions in guild channels, messages in its threads, DMs.

- A mention in a channel starts a thread from the user's message (``mention_mode = "thread"``)
  or is answered inline with a reply; the answer streams by editing a message the bot posts.
- Any message in a thread the bot owns continues that thread's conversation (history from SQL);
  the thread id is the conversation's ``thread`` and its parent the ``channel``. Its answer's
  first message replies to it (``message_reference``, no ping).
- Every DM is answered; the DM channel is one conversation. Each answer replies to its question.
- The bot ignores itself and other bots, and strips its own mention from the text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import discord

from botkit.events import IncomingMessage
from botkit_discord.identity import member_roles, workspace_of
from botkit_discord.ratelimits import RouteLimits
from botkit_discord.reply import DiscordMessageReply, OpenChannel, platform_call
from botkit_discord.settings import DiscordSettings

log = logging.getLogger("botkit_discord.mentions")

_THREAD_NAME_LIMIT = 100
THREAD_ALREADY_EXISTS = 160004  # Discord's code: "A thread has already been created for this message"


@dataclass(frozen=True)
class Addressed:
    """A message the bot should answer, and the reply that answers it."""

    message: IncomingMessage
    reply: DiscordMessageReply


def strip_mention(text: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", " ", text).strip()


def thread_name(text: str) -> str:
    name = " ".join(text.split()) or "botkit"
    return name if len(name) <= _THREAD_NAME_LIMIT else name[: _THREAD_NAME_LIMIT - 1] + "…"


@dataclass(frozen=True)
class _Placement:
    """A message's conversation (``channel``, ``thread``) and how its reply is posted."""

    channel: str
    thread: str
    reference: discord.MessageReference | None = None
    open_channel: OpenChannel | None = None


class MentionRouter:
    """Decides whether a gateway message is for the bot, and where the answer goes."""

    def __init__(
        self, client: discord.Client, settings: DiscordSettings, limits: RouteLimits | None = None
    ) -> None:
        self.client = client
        self.settings = settings
        self.limits = limits  # the route budgets' feeds (botkit_discord.ratelimits)
        self.own_threads: set[int] = set()  # threads started this run (THREAD_CREATE also caches them)

    def _is_own_thread(self, channel: object, bot_id: int) -> bool:
        if isinstance(channel, discord.Thread):
            return channel.owner_id == bot_id or channel.id in self.own_threads
        return getattr(channel, "id", None) in self.own_threads

    async def route(self, message: discord.Message) -> Addressed | None:
        me = self.client.user
        if me is None or message.author.id == me.id or message.author.bot:
            return None
        text = self._addressed_text(message, me.id)
        if text is None:
            return None
        channel = message.channel
        is_dm = message.guild is None
        guild_id = message.guild.id if message.guild is not None else None
        place = self._placement(message, text)
        incoming = IncomingMessage(
            platform="discord",
            workspace=workspace_of(guild_id),
            channel=place.channel,
            thread=place.thread,
            user=str(message.author.id),
            text=text,
            delivery_id=str(message.id),
            user_name=message.author.display_name,
            user_roles=member_roles(message.author),
            is_direct=is_dm,
        )
        reply = DiscordMessageReply(
            self.client.get_partial_messageable(channel.id, guild_id=guild_id),
            reference=place.reference,
            open_channel=place.open_channel,
            private=None if is_dm else message.author.send,  # a refusal is DMed, not shown to all
            max_chars=self.settings.max_chars,
            edits_per_second=self.settings.edits_per_second,
            limits=self.limits,
            # a mention's thread gets the message's id: its own buckets, known before it exists
            route_channel=message.id if place.open_channel is not None else channel.id,
            question=incoming.delivery_id,
        )
        return Addressed(incoming, reply)

    def _addressed_text(self, message: discord.Message, me: int) -> str | None:
        """The question, its mention of the bot stripped, if the message is for the bot (a DM,
        a mention, or any message in a thread the bot owns); None otherwise."""
        # A reply with ping lists the bot in ``mentions`` without ``<@id>`` in the text, and
        # autocomplete often offers the bot's managed role instead of the bot itself.
        bot_role_ids = {
            r.id for r in message.role_mentions if r.is_bot_managed() and r.tags and r.tags.bot_id == me
        }
        mentioned = (
            me in message.raw_mentions or any(u.id == me for u in message.mentions) or bool(bot_role_ids)
        )
        is_dm = message.guild is None
        if not (is_dm or mentioned or self._is_own_thread(message.channel, me)):
            return None
        text = strip_mention(message.content, me)
        for role_id in bot_role_ids:
            text = text.replace(f"<@&{role_id}>", "").strip()
        return text

    def _placement(self, message: discord.Message, text: str) -> _Placement:
        """Where the conversation is keyed and where its reply goes."""
        channel = message.channel
        if isinstance(channel, discord.Thread) or message.guild is None:
            # A follow-up in a thread, a DM: the reply's first message replies to its question
            # (queued follow-ups read clearly), which is also how the restart pass finds a
            # placeholder whose id a killed process never stored (DiscordAdapter.reply_messages).
            parent = channel.parent_id if isinstance(channel, discord.Thread) else channel.id
            return _Placement(str(parent), str(channel.id), message.to_reference(fail_if_not_exists=False))
        # A thread started from a message gets the message's id, so the conversation is keyed
        # the same in both modes, and the thread is only started when the reply posts (after
        # the core claimed the delivery: a redelivered message starts no second thread).
        if self.settings.mention_mode == "thread" and isinstance(channel, discord.TextChannel):
            return _Placement(str(channel.id), str(message.id), None, self._thread_opener(message, text))
        return _Placement(str(channel.id), str(message.id), message.to_reference(fail_if_not_exists=False))

    def _thread_opener(self, message: discord.Message, text: str) -> OpenChannel:
        """Where a mention in a channel is answered: a thread started from it, or, when the bot
        may not start threads there, a reply in the channel (the same conversation key)."""

        async def open_channel() -> tuple[discord.PartialMessageable, discord.MessageReference | None]:
            guild_id = message.guild.id if message.guild is not None else None
            try:
                # A 429 or a transient failure is raised from here: the core's retry of the
                # placeholder (its budget paused on a 429) tries to start the thread again.
                created = await platform_call(
                    lambda: message.create_thread(
                        name=thread_name(text),
                        auto_archive_duration=self.settings.thread_auto_archive_minutes,
                    )
                )
                thread_id = created.id
            except discord.HTTPException as err:
                if err.code == THREAD_ALREADY_EXISTS:
                    thread_id = message.id  # started earlier (another delivery, or by hand): answer there
                else:
                    # Forbidden, too many active threads (160006), another refusal: the user still
                    # gets an answer, inline in the channel, under the same conversation key.
                    log.warning(
                        "cannot start a thread in channel %s (HTTP %s, code %s: %s); answering in the "
                        "channel. Grant the bot Create Public Threads and Send Messages in Threads there.",
                        message.channel.id,
                        err.status,
                        err.code,
                        err.text,
                    )
                    channel = self.client.get_partial_messageable(message.channel.id, guild_id=guild_id)
                    return channel, message.to_reference(fail_if_not_exists=False)
            if thread_id != message.id:
                log.warning("thread %s of message %s has another id than the message", thread_id, message.id)
            self.own_threads.add(thread_id)
            return self.client.get_partial_messageable(thread_id, guild_id=guild_id), None

        return open_channel
