"""``SlackAdapter``: slack-bolt's ``AsyncApp`` turned into messages for the botkit core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.adapter import Adapter, AdapterError, AdapterHost, ShownMessage
from botkit.events import ConversationKey, IncomingMessage, LiveReply, TransientPlatformError
from botkit.markers import ReplyMarker
from botkit_slack.commands import keyword_command, parse_slash, top_level_names, with_command
from botkit_slack.credentials import BotAuth, authorizer, verify
from botkit_slack.directory import SlackDirectory
from botkit_slack.events import DM_THREAD, PLATFORM, BotIdentity, Inbound, from_mention, from_message
from botkit_slack.feedback import (
    ACTION_PATTERN,
    actions_block,
    feedback_blocks,
    feedback_event,
    has_buttons,
    markdown_feedback_blocks,
)
from botkit_slack.markers import marker_of, metadata
from botkit_slack.reply import SlackReply, fit_text
from botkit_slack.sdklogging import WEB_CLIENT_LOGGER, settled_logger
from botkit_slack.settings import SlackSettings
from botkit_slack.streams import StreamStarts
from botkit_slack.threads import ThreadTracker
from botkit_slack.transport import serve_http, serve_socket_mode

log = logging.getLogger("botkit.slack")

#: Seconds before a DM turn's acceptance (botkit's clock) that the restart pass reads the DM's
#: history from, looking for the turn's messages: generous for clock skew against Slack's.
HISTORY_MARGIN = 600.0

_NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
#: ``chat.stopStream``'s answers for a stream that no longer streams (stopped by botkit, by the
#: asker, or ended by Slack): ``chat.update`` takes it again.
NOT_STREAMING = frozenset({"message_not_in_streaming_state", "stopped_by_user"})


class NotRecorded(Exception):
    """Raised from a listener so that bolt sends no ack: the event is not stored, Slack resends it."""


class SlackAdapter(Adapter):
    """Answers @mentions (in their thread), thread follow-ups and DMs.

    Accepted means persisted: bolt runs the listener *before* it acknowledges
    (``process_before_response=True``: in Socket Mode the ack envelope is sent after the
    listener returned, over HTTP the response is), and the listeners translate the event and
    call ``host.submit``, which returns as soon as the message is on disk (the turn runs in a
    task): Slack's 3-second deadline waits for one short transaction, never for the model. If
    the database cannot take an event, the listener raises :class:`NotRecorded`, bolt answers
    500, no ack is sent and Slack redelivers the event (a redelivery of one that *was* stored is
    a duplicate and is dropped).
    """

    name: ClassVar[str] = "slack"
    settings_model: ClassVar[type[BaseModel] | None] = SlackSettings

    def __init__(self, host: AdapterHost, settings: BaseModel | None) -> None:
        super().__init__(host, settings)
        if not isinstance(settings, SlackSettings):
            raise AdapterError("the slack adapter needs a [slack] table with at least bot_token")
        self.config: SlackSettings = settings
        self.identity: BotIdentity | None = None
        self.auth: BotAuth | None = None  # start-up's auth.test: bolt authorizes requests with it
        self.ready = asyncio.Event()  # set once events can arrive
        self.http_port: int | None = None  # HTTP mode: the port actually bound
        self._client: AsyncWebClient | None = None
        self._replies: AsyncWebClient | None = None  # replies' calls: no retries inside the SDK
        self._threads: ThreadTracker | None = None
        self._status_refused: set[str] = set()  # workspaces that refused setStatus: placeholders only
        self._status_first: dict[str, asyncio.Future[bool]] = {}  # see SlackReply
        # streaming = "auto": per workspace, the replies whose first message is a native stream
        self._stream_starts = StreamStarts(self.config.stream_starts_per_minute)

    def _web_client(
        self, *, sdk_retries: bool = True, session: aiohttp.ClientSession | None = None
    ) -> AsyncWebClient:
        """``sdk_retries=False`` for replies: the core's retry policy is their only retry layer.

        ``session``: the serving clients share one HTTP session. Without one, slack_sdk opens a
        new aiohttp session (and TCP connection) for every Web API call: 20-30 % of botkit's CPU
        under load (docs/benchmarks.md, section 4)."""
        return AsyncWebClient(
            token=self.config.bot_token.get_secret_value(),
            base_url=self.config.api_url,
            # slack_sdk's own session only (a shared one keeps its own timeout, set in run());
            # typed int, used as aiohttp.ClientTimeout(total=...), which takes a float
            timeout=self.config.web_timeout or 30,  # type: ignore[arg-type]
            retry_handlers=None if sdk_retries else [],
            session=session,
            logger=settled_logger(WEB_CLIENT_LOGGER),  # no debug strings built per call
        )

    def _session_timeout(self) -> aiohttp.ClientTimeout:
        """The shared session's timeout: ``slack.web_timeout`` if set, else aiohttp's default
        (slack_sdk ignores its client's ``timeout`` on a session it was given)."""
        seconds = self.config.web_timeout
        return aiohttp.client.DEFAULT_TIMEOUT if seconds is None else aiohttp.ClientTimeout(total=seconds)

    async def check(self) -> None:
        """``auth.test`` (bad token, missing scopes) and, in Socket Mode, the app-level token.

        Its answer is kept: bolt authorizes every request with it instead of calling
        ``auth.test`` again on the first one (see :func:`~botkit_slack.credentials.authorizer`).
        """
        self.auth = await verify(self._web_client(), self.config)
        self.identity = self.auth.identity
        # Channel names in access rules and bindings are resolved now: a wrong one stops start-up.
        await self.host.attach_directory(SlackDirectory(self._web_client()))

    async def run(self) -> None:
        if self.auth is None:
            await self.check()
        # No connection limit: the platform's rate limits, not a local pool, pace the calls.
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=self._session_timeout())
        try:
            client = self._client = self._web_client(session=http)
            self._replies = self._web_client(sdk_retries=False, session=http)
            self._threads = ThreadTracker(client)
            app = self._build_app(client)
            self.ready.clear()
            if self.config.mode == "socket":
                assert self.config.app_token is not None  # the settings validator guarantees it
                await serve_socket_mode(app, client, self.config.app_token.get_secret_value(), self.ready.set)
            else:
                await serve_http(
                    app, self.config.http_host, self.config.http_port, self.config.http_path, self._listening
                )
        finally:
            await http.close()

    async def shown_text(self, key: ConversationKey, message_id: str) -> str | None:
        """The message's text now: ``conversations.replies`` narrowed to its ``ts`` (``oldest`` =
        ``latest`` = ts, ``inclusive``), which finds a thread reply and a top-level message alike
        (Slack also returns the thread's parent, hence the match on ``ts``)."""
        message = await self._read(key, message_id)
        return None if message is None else str(message.get("text") or "")

    async def _read(self, key: ConversationKey, message_id: str) -> dict[str, Any] | None:
        """The message as ``conversations.replies`` returns it (blocks and metadata included);
        None where it cannot be read (logged)."""
        client = self._web_client()
        try:
            response = await client.conversations_replies(
                channel=key.channel,
                ts=message_id,
                oldest=message_id,
                latest=message_id,
                inclusive=True,
                include_all_metadata=True,
            )
        except SlackApiError as err:
            log.info("cannot read message %s in %s: %s", message_id, key.channel, err.response.get("error"))
            return None
        for message in response.get("messages") or []:
            if message.get("ts") == message_id:
                return dict(message)
        return None

    async def add_feedback(self, key: ConversationKey, message_id: str, turn_id: int) -> bool:
        """The 👍/👎 of ``turn_id`` on a message read back without them, with the final marker.
        A native stream (unmarked: never stopped) gets them as :meth:`_stop_with_buttons` gives
        them. Any other message: ``chat.update`` with its text as shown (mrkdwn, sent as it is)
        and the blocks a final edit sends (:func:`~botkit_slack.feedback.feedback_blocks`).
        Nothing is sent where the message shows this turn's buttons already."""
        message = await self._read(key, message_id)
        if message is None:
            return False
        if has_buttons(message, turn_id):
            return True
        text = str(message.get("text") or "")
        marker = metadata(ReplyMarker(turn_id, "final"))
        client = self._web_client()
        try:
            if self.unmarked_streams and marker_of(message) is None:
                await self._stop_with_buttons(client, key.channel, message_id, text, turn_id)
            else:
                blocks = feedback_blocks(text, turn_id)
                await client.chat_update(
                    channel=key.channel, ts=message_id, text=text, blocks=blocks, metadata=marker
                )
        except SlackApiError as err:
            log.info("cannot add buttons to %s in %s: %s", message_id, key.channel, err.response.get("error"))
            return False
        return True

    @staticmethod
    async def _stop_with_buttons(
        client: AsyncWebClient, channel: str, ts: str, shown: str, turn_id: int
    ) -> None:
        """An unmarked stream's 👍/👎 and final marker: ``chat.stopStream`` with the actions block
        (appended under its text, as a finished stream's). A stream that Slack ended meanwhile
        (the asker stopped it, or it expired: :data:`NOT_STREAMING`) refuses that, and
        ``chat.update`` takes it again: its Markdown as it shows (``shown``) in a ``markdown``
        block with the buttons under it (``markdown_text`` takes no blocks), and the same
        Markdown as ``text``, the notification fallback, so that it reads back as before."""
        marker = metadata(ReplyMarker(turn_id, "final"))
        try:
            await client.chat_stopStream(
                channel=channel, ts=ts, blocks=[actions_block(turn_id)], metadata=marker
            )
        except SlackApiError as err:
            if err.response.get("error") not in NOT_STREAMING:
                raise
            blocks = markdown_feedback_blocks(shown, turn_id)
            await client.chat_update(channel=channel, ts=ts, text=shown, blocks=blocks, metadata=marker)

    @property
    def unmarked_streams(self) -> bool:
        """Native streaming ("native", or "auto" where a reply's first message is a stream): a
        stream's message is marked only once stopped (``chat.startStream`` takes no metadata), so
        a killed turn's stream is found by where it is (:meth:`reply_messages`)."""
        return self.config.streaming != "edits"

    async def repair(self, key: ConversationKey, message_id: str, text: str) -> bool:
        """A reply left half-written by a crashed process: ``chat.update`` it with the note. A
        native stream that was never stopped refuses that (``streaming_state_conflict``): it is
        stopped first (``chat.stopStream``), then updated, so it shows the same text."""
        client = self._web_client()
        try:
            try:
                await client.chat_update(channel=key.channel, ts=message_id, text=fit_text(text))
            except SlackApiError as err:
                if err.response.get("error") != "streaming_state_conflict":
                    raise
                await client.chat_stopStream(channel=key.channel, ts=message_id)
                await client.chat_update(channel=key.channel, ts=message_id, text=fit_text(text))
        except SlackApiError as err:  # deleted, or a native stream's placeholder that was replaced
            log.info("cannot repair message %s in %s: %s", message_id, key.channel, err.response.get("error"))
            return False
        return True

    async def close_stream(
        self,
        key: ConversationKey,
        message_id: str,
        marker: ReplyMarker,
        text: str | None = None,
        *,
        shown: str | None = None,
    ) -> bool:
        """An unmarked stream the restart pass settles (see :meth:`Adapter.close_stream`).

        Without ``text`` (its final view shown in full, never stopped): ``chat.stopStream`` with
        the marker, so it shows what it streamed, marked; a stream Slack ended meanwhile (the
        asker stopped it, or it expired) refuses that, and gets the marker from ``chat.update``
        with ``shown`` as ``markdown_text``, its Markdown as it shows. With ``text``:
        ``chat.stopStream`` without the marker, then ``chat.update`` with the text *and* the
        marker, so that a kill between the two leaves the stream stopped but still unmarked,
        which the next pass finds again as the turn's stream (marked, it would no longer be told
        from a finished one)."""
        client, meta = self._web_client(), metadata(marker)
        try:
            try:
                await client.chat_stopStream(
                    channel=key.channel, ts=message_id, metadata=None if text else meta
                )
                ended = False
            except SlackApiError as err:
                if err.response.get("error") not in NOT_STREAMING or (text is None and shown is None):
                    raise
                ended = True
            if text is not None:
                await client.chat_update(
                    channel=key.channel, ts=message_id, text=fit_text(text), metadata=meta
                )
            elif ended:
                await client.chat_update(
                    channel=key.channel, ts=message_id, markdown_text=shown, metadata=meta
                )
        except SlackApiError as err:
            log.info(
                "cannot close the stream %s in %s: %s", message_id, key.channel, err.response.get("error")
            )
            return False
        return True

    async def reply_messages(
        self, key: ConversationKey, turn: int, *, question: str | None = None, since: float | None = None,
        others: Collection[str] = (),
    ) -> list[ShownMessage] | None:  # fmt: skip
        """The conversation's messages with ``turn``'s metadata, oldest first: in a thread
        ``conversations.replies`` (every page); in a DM, whose replies are top-level messages,
        ``conversations.history`` from :data:`HISTORY_MARGIN` seconds before ``since`` (when the
        turn was accepted, by botkit's clock: the margin covers skew against Slack's), every
        page. Both with ``include_all_metadata``. None where the conversation cannot be read,
        or a DM's turn has no time to start from. ``question`` is not needed: the marker names
        the turn. With native streaming an unstopped stream is unmarked: after the turn's
        placeholder it is listed too, and where no message is marked (the placeholder deleted)
        it is :meth:`_last_unmarked_stream`; a message in ``others`` (recorded as another turn's
        stream that Slack refused to mark) is never taken so."""
        if not key.thread:
            return None
        if key.thread == DM_THREAD:
            if since is None:
                return None
            pages = self._pages(
                "conversations_history",
                channel=key.channel,
                oldest=f"{max(0.0, since - HISTORY_MARGIN):.6f}",
            )
        else:
            pages = self._pages("conversations_replies", channel=key.channel, ts=key.thread)
        try:
            listed = sorted([m async for m in pages], key=lambda m: float(m.get("ts") or 0))
        except SlackApiError as err:
            log.info("cannot read %s in %s: %s", key.thread, key.channel, err.response.get("error"))
            return None
        if others:
            listed = [m for m in listed if marker_of(m) is not None or str(m.get("ts")) not in others]
        found: list[ShownMessage] = []
        for message in listed:
            marker = marker_of(message)
            if (marker is not None and marker.turn == turn) or (found and self._unmarked_stream(message)):
                found.append(ShownMessage(str(message.get("ts")), str(message.get("text") or ""), marker))
        if not found and key.thread != DM_THREAD and since is not None:
            found = self._last_unmarked_stream(listed, since - HISTORY_MARGIN)
        return found

    def _last_unmarked_stream(self, listed: list[dict[str, Any]], oldest: float) -> list[ShownMessage]:
        """With native streaming, a turn none of whose messages is marked any more (the stream
        replaced the placeholder, then the process died before ``chat.stopStream`` marked it):
        its stream is the *last* message of ours in the thread with no marker and no file, from
        ``oldest`` on (the turn's acceptance less :data:`HISTORY_MARGIN`, as for a DM). Turns in
        a thread run one at a time and every other message botkit posts is marked (a stream
        whose stop Slack refused is marked by ``chat.update``, one the restart repairs or stops
        by :meth:`close_stream`), so an earlier unmarked one (repaired by an older botkit) comes
        before it; where the turn has no message of its own that one is listed, but it ends with
        the interruption note already, so the core leaves it alone. The core takes an unmarked
        message only for a turn that was ``streaming`` (:mod:`botkit.repair`)."""
        candidates = [m for m in listed if self._unmarked_stream(m) and float(m.get("ts") or 0) >= oldest]
        if not candidates:
            return []
        last = candidates[-1]
        return [ShownMessage(str(last.get("ts")), str(last.get("text") or ""))]

    def _unmarked_stream(self, message: Mapping[str, Any]) -> bool:
        """A message of ours with no marker, no file, after a marked message of the turn: with
        native streaming, a stream that was never stopped (turns in a thread run one at a time,
        and every other message botkit posts carries its turn's marker)."""
        ours = self.identity is not None and message.get("user") == self.identity.user_id
        return self.unmarked_streams and ours and marker_of(message) is None and not message.get("files")

    async def _pages(self, method: str, **args: Any) -> AsyncIterator[dict[str, Any]]:
        """Every message of a paged ``conversations.*`` read, with message metadata."""
        call = getattr(self._web_client(), method)
        cursor: str | None = None
        while True:
            response = await call(**args, include_all_metadata=True, limit=200, cursor=cursor)
            for message in response.get("messages") or []:
                yield message
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or cursor is None:
                return

    async def remove(self, key: ConversationKey, message_id: str) -> bool:
        """``chat.delete``; a message already gone counts as removed."""
        client = self._web_client()
        try:
            await client.chat_delete(channel=key.channel, ts=message_id)
        except SlackApiError as err:
            if err.response.get("error") == "message_not_found":
                return True
            log.info("cannot delete message %s in %s: %s", message_id, key.channel, err.response.get("error"))
            return False
        return True

    def _listening(self, port: int) -> None:
        self.http_port = port
        self.ready.set()

    def _build_app(self, client: AsyncWebClient) -> AsyncApp:
        assert self.auth is not None  # run() checked first
        secret = self.config.signing_secret
        app = AsyncApp(
            # The app's client is only the template of bolt's per-request clients, which get the
            # bot token from ``authorize``; a token here too would make bolt warn that it is unused.
            client=AsyncWebClient(base_url=client.base_url),
            authorize=authorizer(self.auth, self.config.bot_token.get_secret_value()),
            signing_secret=secret.get_secret_value() if secret is not None else "",
            request_verification_enabled=self.config.mode == "http",
            process_before_response=True,  # ack after the listener: after the message is stored
            # bolt's per-event ``say``/``set_status``/``say_stream`` helpers for assistant threads:
            # botkit's listeners never take them (the replies make their own calls), and building
            # them was about a tenth of bolt's work per event (benchmarks/bench_bolt_dispatch.py).
            attaching_conversation_kwargs_enabled=False,
            name="botkit",
            logger=settled_logger("botkit.slack.bolt"),  # also the Socket Mode client's
        )
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("channel_rename")(self._on_rename)
        app.event("group_rename")(self._on_rename)  # a private channel's
        for name in top_level_names(self.host.commands):
            app.command(f"/{name}")(self._on_command)
        app.action(ACTION_PATTERN)(self._on_feedback)
        return app

    # -- listeners (bolt acknowledges once they return; an exception means no ack) ----------
    async def _on_mention(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        inbound = from_mention(body, event, self._me(context))
        if inbound is not None:
            await self._submit(inbound)

    async def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        me = self._me(context)
        inbound = from_message(body, event, me, self.config)
        if inbound is None:
            return
        if inbound.needs_thread_check:
            assert self._threads is not None
            message = inbound.message
            if not await self._threads.is_part_of(message.channel, message.thread, me):
                return
        await self._submit(inbound)

    async def _on_rename(self, event: dict[str, Any]) -> None:
        """``channel_rename``: ``{"channel": {"id", "name", "created"}}``; bindings keep the channel."""
        channel = event.get("channel") or {}
        if channel.get("id") and channel.get("name"):
            self.host.channel_renamed(PLATFORM, str(channel["id"]), str(channel["name"]))

    async def _on_command(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        """``/math 2+2``: answered by a new message in the channel, acked once it is stored.

        ``ack()`` only marks the response: bolt sends it after this returns. Slack does not
        redeliver a slash command, so a database failure is shown to the asker in the reply
        (``host.submit`` without ``redeliverable``), and the ack is still sent.

        Slack has no message for a slash command and custom commands cannot be used in threads,
        so the reply's first message is posted here, before the core sees the command, and its
        ``ts`` is the conversation's thread: follow-ups in that message's thread continue it.
        """
        await ack()
        assert self._client is not None
        assert self._threads is not None
        parsed = parse_slash(str(body.get("command") or ""), str(body.get("text") or ""), self.host.commands)
        channel, user = str(body.get("channel_id") or ""), str(body.get("user_id") or "")
        team = str(body.get("team_id") or context.get("team_id") or "")
        reply = self._reply(team, channel, None, user)
        try:
            where = ConversationKey(PLATFORM, team, channel, "")
            ts = await reply.prepare(self.host, where=where, persona=parsed.args.get("persona"))
        except (SlackApiError, TransientPlatformError) as err:
            code = err.response.get("error") if isinstance(err, SlackApiError) else "unavailable"
            log.info("cannot answer /%s in %s: %s", parsed.name, channel, code)
            hint = (
                "I can't post in this conversation: invite me first (`/invite @botkit`) or DM me."
                if code in _NOT_A_MEMBER
                else f"Slack refused my reply ({code}); please try again."
            )
            await respond(text=f"⚠️ {hint}", response_type="ephemeral")
            return
        message = IncomingMessage(
            platform=PLATFORM,
            workspace=team,
            channel=channel,
            thread=ts,
            user=user,
            text=parsed.text,
            delivery_id=str(body.get("trigger_id") or ts),
            command=parsed.name,
            args=parsed.args,
            user_name=str(body["user_name"]) if body.get("user_name") else None,
            is_direct=channel.startswith("D"),
        )
        self._threads.remember(channel, ts)
        submission = await self.host.submit(message, reply)
        if not submission.accepted:
            log.info("Slack command %s was already handled", message.delivery_id)
            await reply.discard_prepared()

    async def _on_feedback(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A 👍/👎 click (``block_actions``): stored by the core, acknowledged to the voter alone
        (``chat.postEphemeral`` in the reply's thread). The buttons stay as they are: everyone
        reading the reply shares them. bolt sends the ack once this returns: one short
        transaction and one Web API call, well inside Slack's 3 seconds."""
        await ack()
        event = feedback_event(body, action)
        if event is None:
            log.info("ignoring a feedback click without a turn id: %s", action.get("action_id"))
            return
        receipt = await self.host.vote(event)
        if receipt.text is None:
            return
        assert self._replies is not None
        thread_ts = (body.get("container") or {}).get("thread_ts") or (body.get("message") or {}).get(
            "thread_ts"
        )
        try:
            await self._replies.chat_postEphemeral(
                channel=event.channel, user=event.user, text=receipt.text, thread_ts=thread_ts
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
            log.info("could not thank %s for a vote in %s: %s", event.user, event.channel, err)

    def _me(self, context: Mapping[str, Any]) -> BotIdentity:
        if self.identity is not None:
            return self.identity
        return BotIdentity(str(context.get("bot_user_id") or ""), str(context.get("bot_id") or ""))

    async def _submit(self, inbound: Inbound) -> None:
        assert self._client is not None
        assert self._threads is not None
        message = inbound.message
        parsed = keyword_command(message.text, self.host.commands, self.config.command_prefix)
        if parsed is not None:
            message = with_command(message, parsed)
        if inbound.reply_thread_ts is not None and not message.is_direct:
            self._threads.remember(message.channel, inbound.reply_thread_ts)
        reply = self._reply(message.workspace, message.channel, inbound.reply_thread_ts, message.user)
        submission = await self.host.submit(message, reply, redeliverable=True)
        if submission.unrecorded:
            raise NotRecorded(f"Slack event {message.delivery_id} not stored: not acknowledged")
        if not submission.accepted:
            log.info("Slack event %s was already handled (redelivery)", message.delivery_id)

    async def reply_in(
        self, key: ConversationKey, user: str, *, question: str | None = None
    ) -> LiveReply | None:
        """A new message in the conversation's thread (top-level in a DM's shared conversation);
        ``question`` is not needed: the thread says where it belongs."""
        if self._replies is None:
            self._replies = self._web_client(sdk_retries=False)
        if self._threads is None:
            self._threads = ThreadTracker(self._web_client())
        thread_ts = None if key.thread == DM_THREAD else key.thread
        return self._reply(key.workspace, key.channel, thread_ts, user)

    def _reply(self, team: str, channel: str, thread_ts: str | None, user: str) -> SlackReply:
        assert self._replies is not None
        assert self._threads is not None
        return SlackReply(
            self._replies,
            self.config,
            team_id=team,
            channel=channel,
            thread_ts=thread_ts,
            user=user,
            on_posted=self._threads.remember,
            status_refused=self._status_refused,
            status_first=self._status_first,
            stream_starts=self._stream_starts,
        )
