"""The Discord adapter: a discord.py client whose slash commands and mentions feed the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
import discord
from discord import app_commands
from pydantic import BaseModel

from botkit.adapter import Adapter, AdapterError, AdapterHost, CommandSpec
from botkit.events import ConversationKey, IncomingMessage, LiveReply, TransientPlatformError, Vote
from botkit.markers import Listing, ShownMessage
from botkit_discord.commands import build_tree, declared_args, main_text
from botkit_discord.directory import DiscordDirectory
from botkit_discord.endpoints import point_discord_py_at
from botkit_discord.feedback import FeedbackButton, answer_vote, feedback_view, has_buttons
from botkit_discord.identity import channel_and_thread, member_roles, workspace_of
from botkit_discord.mentions import MentionRouter
from botkit_discord.ratelimits import RouteLimits
from botkit_discord.reply import DiscordInteractionReply, DiscordMessageReply, shown_as
from botkit_discord.settings import DiscordSettings

log = logging.getLogger("botkit_discord")

# discord.py refuses a max_ratelimit_timeout below 30 s; longer 429s raise RateLimited instead of
# sleeping inside an edit, and the core's streamer waits them out with its shared budget.
MAX_RATELIMIT_SLEEP = 30.0
# How far Discord's clock (message ids) may be behind botkit's when a message is looked for by
# the time botkit posted it (Slack's reads use the same margin: botkit_slack.adapter).
CLOCK_MARGIN = 10 * 60.0
# View Channels, Send Messages, Read Message History, Create Public Threads, Send Messages in Threads
INVITE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 35) | (1 << 38)


def fit_message(text: str, limit: int) -> str:
    """``text`` within Discord's message limit, keeping its end (the interrupted note)."""
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1 :]


def minimal_intents() -> discord.Intents:
    """Guilds (channels, roles, threads), guild and DM messages, and message content (privileged:
    needed to read messages in the bot's threads that do not mention it)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


def _message_place(key: ConversationKey, message_id: str) -> tuple[int, list[int]] | None:
    """The message id and the channels that may hold it (the thread first, then the channel);
    None, logged, where the stored id or key cannot name a Discord message."""
    try:
        mid = int(message_id)
    except ValueError:
        log.info("interrupted reply %r in %s is not a Discord message id; not touching it", message_id, key)
        return None
    candidates = list(dict.fromkeys(int(c) for c in (key.thread, key.channel) if c.isdigit()))
    if not candidates:
        log.info("no Discord channel known for the interrupted reply %s in %s", message_id, key)
        return None
    return mid, candidates


async def _fetched(client: discord.Client, mid: int, candidates: list[int]) -> discord.Message | None:
    """The message ``mid`` from the first of ``candidates`` (channel ids) that has it and lets
    the bot read it (``GET /channels/{channel}/messages/{message}``); None if none does."""
    for channel_id in candidates:
        try:
            return await client.get_partial_messageable(channel_id).fetch_message(mid)
        except (discord.NotFound, discord.Forbidden):
            continue
    return None


def _answers(message: discord.Message, question: int) -> bool:
    """The message replies to ``question`` or is a response to the interaction ``question``."""
    if message.reference is not None and message.reference.message_id == question:
        return True
    return message.interaction_metadata is not None and message.interaction_metadata.id == question


def _references_nothing(message: discord.Message) -> bool:
    return message.reference is None and message.interaction_metadata is None


class BotkitClient(discord.Client):
    """discord.Client with botkit's command tree; events are forwarded to the adapter."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        settings = adapter.config
        options: dict[str, Any] = {}
        if settings.application_id is not None:
            options["application_id"] = settings.application_id
        super().__init__(
            intents=minimal_intents(),
            allowed_mentions=discord.AllowedMentions.none(),  # model output never pings anyone
            guild_ready_timeout=settings.guild_ready_timeout,
            max_ratelimit_timeout=MAX_RATELIMIT_SLEEP,
            http_trace=adapter.route_limits.trace_config(),  # the buckets' numbers, the global hold
            **options,
        )
        self.adapter = adapter
        self.tree = build_tree(self, adapter.host, adapter.host.commands, adapter.on_command)

    async def setup_hook(self) -> None:
        # Every message's 👍/👎, by custom_id template: replies from before a restart included.
        self.add_dynamic_items(FeedbackButton)
        if not self.adapter.synced:  # check() normally synced them already, before anything started
            await self.adapter.sync_commands(self.tree)

    async def on_feedback(self, interaction: discord.Interaction[Any], vote: Vote, turn_id: int) -> None:
        """A vote button was clicked (:class:`~botkit_discord.feedback.FeedbackButton`)."""
        await answer_vote(self.adapter.host, interaction, vote, turn_id)

    async def on_ready(self) -> None:
        self.adapter.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)

    async def on_guild_channel_update(
        self, before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        if before.name != after.name:  # a rename: bindings keep the channel (pinned to its id)
            self.adapter.host.channel_renamed("discord", str(after.id), after.name)


class DiscordAdapter(Adapter):
    name: ClassVar[str] = "discord"
    settings_model: ClassVar[type[BaseModel] | None] = DiscordSettings

    def __init__(self, host: AdapterHost, settings: BaseModel | None) -> None:
        super().__init__(host, settings)
        if not isinstance(settings, DiscordSettings):
            raise AdapterError("the discord adapter needs a [discord] section with at least `token`")
        self.config = settings
        self.client: BotkitClient | None = None
        self.ready = asyncio.Event()
        self.synced: list[str] = []  # where commands were synced: guild ids or "global"
        self._accepting = True
        self._mentions: MentionRouter | None = None
        self._restart_rest: discord.Client | None = None  # see reply_in
        self.route_limits = RouteLimits()  # Discord's per-route buckets, read from its answers
        if settings.shutdown_grace is not None:
            log.warning(
                "discord.shutdown_grace (BOTKIT_DISCORD__SHUTDOWN_GRACE) is deprecated and ignored: "
                "on shutdown botkit's core lets replies in flight finish, on every platform, for "
                "[bot] shutdown_grace seconds (BOTKIT_BOT__SHUTDOWN_GRACE); set that instead. "
                "discord.shutdown_grace will be removed in the next release."
            )

    # -- start-up ----------------------------------------------------------------------------
    def _token(self) -> str:
        token = self.config.token.get_secret_value().strip()
        if not token:
            raise AdapterError("discord.token is empty: set it in [discord] or BOTKIT_DISCORD__TOKEN")
        return token

    async def _login(self, client: discord.Client) -> None:
        """Log in (GET /users/@me, GET /oauth2/applications/@me) with errors that say what to do."""
        api = self.config.api_url
        try:
            await client.login(self._token())
        except discord.LoginFailure:
            raise AdapterError(
                "Discord rejected the bot token (HTTP 401). Copy the token from the Developer Portal "
                "(Application -> Bot -> Reset Token) into BOTKIT_DISCORD__TOKEN."
            ) from None
        except discord.HTTPException as err:
            raise AdapterError(
                f"Discord API at {api} answered HTTP {err.status} while logging in: {err.text or 'no details'}"
            ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise AdapterError(f"cannot reach the Discord API at {api}: {err}") from None
        app_id = client.application_id
        if app_id is None:
            raise AdapterError(
                "the Discord application id is unknown: set discord.application_id "
                "(Developer Portal -> General Information -> Application ID)"
            )
        if self.config.application_id is not None and self.config.application_id != app_id:
            raise AdapterError(
                f"discord.application_id is {self.config.application_id}, but the token belongs to "
                f"application {app_id}; fix one of them"
            )

    async def check(self) -> None:
        """Log in and register the slash commands, so that a bad token, a token of another
        application or a guild that did not grant ``applications.commands`` stops botkit before
        any adapter starts (no half-started bot)."""
        point_discord_py_at(self.config.api_url, self.config.gateway_url)
        client = discord.Client(intents=minimal_intents())
        try:
            await self._login(client)
            await self.sync_commands(build_tree(client, self.host, self.host.commands, self.on_command))
        finally:
            await client.close()
        # Channel names in access rules and bindings are resolved now: a wrong one stops start-up.
        await self.host.attach_directory(
            DiscordDirectory(lambda: self.client, self._rest_client, list(self.config.guild_ids))
        )

    async def shown_text(self, key: ConversationKey, message_id: str) -> str | None:
        """The message's content now (``GET /channels/{channel}/messages/{message}``, in the
        same places :meth:`repair` looks); None where no candidate has it or may be read."""
        found = _message_place(key, message_id)
        if found is None:
            return None
        async with self._rest_client() as client:
            message = await _fetched(client, *found)
        if message is not None:
            return message.content
        log.info("cannot read the interrupted reply %s in %s (deleted, or not visible)", message_id, key)
        return None

    @property
    def hands_back_first(self) -> bool:
        """A reply's first message carries its turn's nonce (``enforce_nonce``): Discord hands
        back the message created with it for a few minutes (:func:`~botkit_discord.reply.first_nonce`)."""
        return True

    async def reply_messages(
        self, key: ConversationKey, turn: int, *, question: str | None = None, since: float | None = None,
        others: Collection[str] = (),
    ) -> list[ShownMessage] | None:  # fmt: skip
        """The bot's messages that answer ``question`` (the turn's delivery id: the question's
        message id, or a slash command's interaction id), oldest first, as Discord shows them.

        Discord echoes no marker on reads (a ``nonce`` is not returned), so the turn's messages
        are told apart by what they answer. The places the reply can be are listed after the
        question (``GET /channels/{channel}/messages?after=<question>&limit=100``): the thread
        (the key's ``thread``, where it is a channel) and then the channel. Kept are the bot's
        messages there that

        - reply to the question (``message_reference``): a mention answered inline (or in the
          channel where no thread could be started), a follow-up in a thread, a DM;
        - answer its interaction (``interaction_metadata.id``): a slash command's response;
        - or, in the thread a mention started (its id is the mention's: "Start Thread from
          Message"), the thread's first bot message if it references nothing: that mention's
          placeholder, posted into the new thread (a reply cannot reference a message in
          another channel, and every later turn's reply there references its own question).

        A reply's continuation messages reference nothing and are not listed. A busy place is
        paged (:meth:`_listed`): up to the first message posted ``discord.repair_window_seconds``
        after ``since`` (when the turn was accepted; the reply's first message is posted at
        once), at most ``discord.repair_max_pages`` pages of 100; where nothing is found and a
        bound stopped a listing, the :class:`~botkit.markers.Listing` says ``cut``. None where
        the key names no Discord channel, no question is known or no place could be read.
        """
        # No guess from the key: in a mention's thread the key names the mention, and a
        # follow-up's turn would be handed that mention's reply.
        asked = question or ""
        if not asked.isdigit() or not key.channel.isdigit():
            return None
        read = cut = False
        places = [int(c) for c in dict.fromkeys((key.thread, key.channel)) if c.isdigit()]
        until = None if since is None else since + self.config.repair_window_seconds
        async with self._rest_client() as client:
            me = client.user.id if client.user is not None else None
            for channel_id in places:
                listed: list[discord.Message] = []
                try:
                    cut = (
                        await self._listed(
                            client.get_partial_messageable(channel_id), int(asked), until, listed
                        )
                        or cut
                    )
                except (discord.NotFound, discord.Forbidden):
                    continue  # not a channel (an inline mention's key, an interaction id), or hidden
                read = True
                mine = [m for m in listed if m.author.id == me]
                found = [m for m in mine if _answers(m, int(asked))]
                started = channel_id == int(asked) and key.thread != key.channel
                if not found and started and mine and _references_nothing(mine[0]):
                    found = [mine[0]]
                if found:
                    return Listing.of([ShownMessage(str(m.id), m.content) for m in found])
        return Listing.of([], cut=cut) if read else None

    async def find_shown(
        self, key: ConversationKey, text: str, *, since: float | None = None, after: str | None = None
    ) -> list[ShownMessage] | None:
        """The bot's messages showing ``text`` where :meth:`reply_in` posts and a reply's
        messages go (the thread first, then the channel): after the message ``after`` (at most
        ``discord.repair_max_pages`` pages), or from :data:`CLOCK_MARGIN` before ``since``
        (Discord's clock against botkit's) up to ``discord.repair_window_seconds`` after it.
        What is looked for here often references nothing (the restart's note for a slash
        command, whose interaction names no message, or in a mention's thread; a continuation
        message), so it is told by its place, time and text. None where the key names no
        Discord channel or no place could be read."""
        if after is not None and after.isdigit():
            start, until = int(after), None
        elif since is not None:
            moment = datetime.fromtimestamp(since - CLOCK_MARGIN, UTC)
            start, until = discord.utils.time_snowflake(moment), since + self.config.repair_window_seconds
        else:
            return None
        places = [int(c) for c in dict.fromkeys((key.thread, key.channel)) if c.isdigit()]
        read = False
        async with self._rest_client() as client:
            me = client.user.id if client.user is not None else None
            for channel_id in places:
                listed: list[discord.Message] = []
                try:
                    await self._listed(client.get_partial_messageable(channel_id), start, until, listed)
                except (discord.NotFound, discord.Forbidden):
                    continue
                read = True
                # As Discord keeps it (shown_as): a chunk ending in a space reads back without it.
                found = [m for m in listed if m.author.id == me and shown_as(m.content) == shown_as(text)]
                if found:
                    return [ShownMessage(str(m.id), m.content) for m in found]
        return [] if read else None

    async def _listed(
        self,
        channel: discord.PartialMessageable,
        asked: int,
        until: float | None,
        listed: list[discord.Message],
    ) -> bool:
        """Add to ``listed`` the messages after ``asked`` in ``channel``, oldest first, up to the
        first one posted after ``until`` (Unix seconds; None: no bound but the pages).
        discord.py pages with ``after=`` by itself (``GET …/messages?after=<newest so far>&limit=100``
        until a page comes back short); at most ``repair_max_pages`` pages are read. True where
        a bound cut the listing short of the channel's newest message (the time, or the pages)."""
        limit = 100 * self.config.repair_max_pages
        async for message in channel.history(limit=limit, after=discord.Object(asked), oldest_first=True):
            if until is not None and message.created_at.timestamp() > until:
                return True  # every later one is later still: the turn should not have posted it
            listed.append(message)
        return len(listed) >= limit

    async def repair(self, key: ConversationKey, message_id: str, text: str) -> bool:
        """Edit a reply a crashed process left half-written, with the bot token (``PATCH
        /channels/{channel}/messages/{message}``); runs before :meth:`run`, on its own connection.

        The keys this adapter makes say where the reply was posted: in the thread (a thread's id
        is the key's ``thread``; a mention's thread has the mention's id), in a DM (channel and
        thread are the DM), or in the channel itself (an inline mention reply, a mention where no
        thread could be started, a one-off slash command whose ``thread`` is the interaction id).
        So the thread is tried first and then the channel. A slash command's response is a
        webhook message of its interaction, whose token died with the old process: the bot token
        edits it only where Discord allows it (not an ephemeral one, not in a channel the bot
        cannot see). Returns False, without raising, when no candidate has the message (deleted)
        or Discord refuses the edit (403).
        """
        found = _message_place(key, message_id)
        if found is None:
            return False
        mid, candidates = found
        content = fit_message(text, self.config.max_chars)
        refusals: list[str] = []
        async with self._rest_client() as client:
            for channel_id in candidates:
                message = client.get_partial_messageable(channel_id).get_partial_message(mid)
                try:
                    await message.edit(content=content)
                except (discord.NotFound, discord.Forbidden) as err:
                    refusals.append(f"channel {channel_id}: HTTP {err.status} code {err.code} {err.text}")
                    continue
                log.info(
                    "marked the interrupted reply %s in channel %s as interrupted", message_id, channel_id
                )
                return True
        log.info(
            "the interrupted reply %s in %s cannot be edited any more (deleted, ephemeral, or an "
            "interaction response the bot token may not edit): %s",
            message_id,
            key,
            "; ".join(refusals),
        )
        return False

    async def add_feedback(self, key: ConversationKey, message_id: str, turn_id: int) -> bool:
        """The 👍/👎 of ``turn_id`` on a message read back without them (``GET`` it, in the
        places :meth:`repair` looks), with the bot token: ``PATCH`` with the action row alone
        (``components``; the content is left out, so it stays as it is). Nothing is sent where
        the message shows this turn's buttons already. False where it cannot be read or edited
        (deleted, or an interaction response the bot token may not edit: logged)."""
        found = _message_place(key, message_id)
        if found is None:
            return False
        async with self._rest_client() as client:
            message = await _fetched(client, *found)
            if message is None:
                log.info("cannot read the reply %s in %s to add its buttons", message_id, key)
                return False
            if has_buttons(message, turn_id):
                return True
            try:
                await message.edit(view=feedback_view(turn_id))
            except (discord.NotFound, discord.Forbidden) as err:
                log.info(
                    "cannot add buttons to %s in %s: HTTP %s code %s", message_id, key, err.status, err.code
                )
                return False
        return True

    async def reply_in(
        self, key: ConversationKey, user: str, *, question: str | None = None
    ) -> LiveReply | None:
        """A new message where the lost question was asked, without pinging anyone: in its
        thread where that thread exists (a mention's thread has the mention's id), replying to
        a follow-up's ``question`` there (the mention itself is in the parent channel, and a
        reply cannot reference another channel's message); else in the channel as a reply to
        the key's ``thread`` (a mention answered inline; a slash command: its interaction id
        names no message, so the reference is dropped rather than failing); in a DM as a reply
        to the ``question``.

        The restart pass runs before :meth:`run`; the REST client opened here stays logged in
        until :meth:`run` starts (it closes it) so that the reply can still be written. A sweep
        while serving (another process's turns, see :mod:`botkit.leftovers`) uses the connected
        client."""
        candidates = [int(c) for c in dict.fromkeys((key.thread, key.channel)) if c.isdigit()]
        if not candidates:
            log.info("no Discord channel known for the unanswered message in %s", key)
            return None
        # While serving (a sweep found a gone process's turn): the connected client.
        client = (
            self.client
            if self.client is not None and self.client.is_ready()
            else await self._restart_client()
        )

        def replying(asked: str | None, channel_id: int) -> discord.MessageReference | None:
            if asked is None or not asked.isdigit() or int(asked) == channel_id:
                return None  # nothing known, or the thread's own starter (in the parent channel)
            return discord.MessageReference(
                message_id=int(asked), channel_id=channel_id, fail_if_not_exists=False
            )

        async def open_channel() -> tuple[discord.PartialMessageable, discord.MessageReference | None]:
            for channel_id in candidates[:-1]:  # the thread, where there is one
                try:
                    await client.fetch_channel(channel_id)
                except (discord.NotFound, discord.Forbidden):
                    continue
                return client.get_partial_messageable(channel_id), replying(question, channel_id)
            channel_id = candidates[-1]
            # In a server channel the key's thread is what was asked there (the mention, or the
            # interaction); a follow-up's question lives in its thread, not here. A DM: the question.
            asked = question if key.thread == key.channel else key.thread
            return client.get_partial_messageable(channel_id), replying(asked, channel_id)

        return DiscordMessageReply(
            client.get_partial_messageable(candidates[-1]),
            open_channel=open_channel,
            max_chars=self.config.max_chars,
            edits_per_second=self.config.edits_per_second,
            question=question,  # the nonce of the turn's first message (first_nonce)
        )

    async def _restart_client(self) -> discord.Client:
        """One logged-in REST client for the restart pass's new replies, closed by :meth:`run`."""
        if self._restart_rest is None:
            client = self._new_rest_client()
            try:
                await self._login(client)
            except BaseException:
                await client.close()
                raise
            self._restart_rest = client
        return self._restart_rest

    @contextlib.asynccontextmanager
    async def _rest_client(self) -> AsyncIterator[discord.Client]:
        """A logged-in client for REST calls only (no gateway), closed afterwards."""
        client = self._new_rest_client()
        try:
            await self._login(client)
            yield client
        finally:
            await client.close()

    def _new_rest_client(self) -> discord.Client:
        """A client for REST calls only (never connected to the gateway), pinging no one."""
        point_discord_py_at(self.config.api_url, self.config.gateway_url)
        return discord.Client(
            intents=minimal_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_SLEEP,
        )

    def invite_url(self, application_id: int | None) -> str:
        client_id = application_id or self.config.application_id or "APPLICATION_ID"
        return (
            f"https://discord.com/oauth2/authorize?client_id={client_id}"
            f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
        )

    async def sync_commands(self, tree: app_commands.CommandTree[Any]) -> None:
        """Register the commands where they are used: each configured guild (instant), or globally."""
        targets: list[int | None] = list(self.config.guild_ids) or [None]
        synced: list[str] = []
        for guild_id in targets:
            where = f"guild {guild_id}" if guild_id is not None else "all servers (global commands)"
            try:
                if guild_id is None:
                    await tree.sync()
                else:
                    guild = discord.Object(id=guild_id)
                    tree.copy_global_to(guild=guild)
                    await tree.sync(guild=guild)
            except discord.Forbidden as err:
                fix = (
                    f"Re-invite the bot to that server with the applications.commands scope "
                    f"({self.invite_url(tree.client.application_id)}), or remove {guild_id} from "
                    "discord.guild_ids."
                    if guild_id is not None
                    else "Check that the token belongs to this application."
                )
                raise AdapterError(
                    f"Discord refused to register the slash commands in {where} "
                    f"(HTTP {err.status}, code {err.code}: {err.text or 'Missing Access'}). {fix}"
                ) from None
            except discord.HTTPException as err:
                raise AdapterError(
                    f"Discord answered HTTP {err.status} (code {err.code}) while registering the slash "
                    f"commands in {where}: {err.text or 'no details'}"
                ) from None
            except (aiohttp.ClientError, OSError) as err:
                raise AdapterError(f"cannot reach the Discord API at {self.config.api_url}: {err}") from None
            synced.append(str(guild_id) if guild_id is not None else "global")
        self.synced = synced
        log.info("slash commands synced: %s", ", ".join(synced))

    # -- serving -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until cancelled, then close the connection at once.

        Draining is the core's: :meth:`botkit.app.BotApp.serve` lets the replies in flight
        land, through this still-open connection, before it cancels the adapters.
        """
        if self._restart_rest is not None:  # the restart pass's replies have all been written
            await self._restart_rest.close()
            self._restart_rest = None
        point_discord_py_at(self.config.api_url, self.config.gateway_url)
        client = self.client = BotkitClient(self)
        self._mentions = MentionRouter(client, self.config, self.route_limits)
        try:
            await self._login(client)
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            raise AdapterError(
                "Discord refused the gateway connection: the Message Content intent is not enabled. "
                "Turn it on in the Developer Portal (Application -> Bot -> Privileged Gateway Intents)."
            ) from None
        finally:
            self._accepting = False
            await client.close()
            self.ready.clear()

    async def on_command(
        self, interaction: discord.Interaction[Any], spec: CommandSpec, args: dict[str, str]
    ) -> None:
        """Persist, then acknowledge (defer) inside Discord's 3-second deadline, then answer.

        Accepted means persisted: the command is on disk before Discord is told it was received,
        so a process that dies in between leaves no "thinking…" with nothing behind it. The turn
        task starts at ``submit``, but its reply waits for the deferral (:class:`_AfterDefer`);
        a database failure (``redeliverable``: the core shows nothing) is shown here, after it.
        """
        channel_id = interaction.channel_id or 0
        reply = _AfterDefer(
            interaction,
            interaction.client.get_partial_messageable(channel_id, guild_id=interaction.guild_id),
            max_chars=self.config.max_chars,
            edits_per_second=self.config.edits_per_second,
            reply_seconds=self.config.interaction_reply_seconds,
            limits=self.route_limits,  # its interaction's own buckets (botkit_discord.ratelimits)
        )
        if not self._accepting:
            if not await self._defer(interaction, reply):
                return
            restarting = "⚠️ botkit is restarting; please ask again shortly."
            try:
                if not await reply.post_notice(restarting):
                    await interaction.edit_original_response(content=restarting)
            except (discord.HTTPException, TransientPlatformError) as err:  # shutting down: no retry
                log.info("could not tell %s that botkit is restarting: %s", interaction.id, err)
            return
        channel, thread = channel_and_thread(interaction)
        message = IncomingMessage(
            platform="discord",
            workspace=workspace_of(interaction.guild_id),
            channel=channel,
            thread=thread,
            user=str(interaction.user.id),
            text=main_text(spec, args),
            delivery_id=str(interaction.id),
            command=spec.qualified_name,
            args=declared_args(spec, args),
            user_name=interaction.user.display_name,
            user_roles=member_roles(interaction.user),
            is_direct=interaction.guild_id is None,
        )
        submission = await self.host.submit(message, reply, redeliverable=True)
        if not await self._defer(interaction, reply) or not submission.unrecorded:
            return
        try:
            if not await reply.post_notice(NOT_STORED):
                await interaction.edit_original_response(content=NOT_STORED)
        except (discord.HTTPException, TransientPlatformError) as err:
            log.warning("could not tell %s that its command was not stored: %s", interaction.id, err)

    @staticmethod
    async def _defer(interaction: discord.Interaction[Any], reply: _AfterDefer) -> bool:
        """Acknowledge the interaction; its reply may go ahead after this, deferred or not."""
        try:
            await interaction.response.defer(thinking=True)
        except (discord.HTTPException, aiohttp.ClientError) as err:
            log.warning("could not defer interaction %s: %s", interaction.id, err)
            return False
        finally:
            reply.deferred.set()
        return True

    async def on_message(self, message: discord.Message) -> None:
        # No _accepting check here: while shutting down, the core itself answers a mention with
        # "restarting, ask again", and Discord never redelivers a message we would drop.
        if self._mentions is None:
            return
        try:
            addressed = await self._mentions.route(message)
        except discord.HTTPException as err:
            log.warning("could not answer message %s: %s", message.id, err)
            return
        if addressed is not None:
            await self.host.submit(addressed.message, addressed.reply)


NOT_STORED = (
    "⚠️ botkit could not take your question right now (its database is unavailable); "
    "please ask again in a minute."
)


class _AfterDefer(DiscordInteractionReply):
    """An interaction reply whose first message waits until the interaction was deferred: the
    command is persisted (and its turn task started) before the deferral is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deferred = asyncio.Event()

    async def post_notice(self, text: str) -> bool:
        await self.deferred.wait()
        return await super().post_notice(text)

    async def post_placeholder(self, text: str) -> str:
        await self.deferred.wait()
        return await super().post_placeholder(text)
