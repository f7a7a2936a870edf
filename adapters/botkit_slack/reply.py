"""``SlackReply``: one answer in a Slack thread, shown by ``chat.postMessage`` then ``chat.update``.

With ``slack.streaming = "native"`` a reply in a thread is shown with Slack's streaming methods
instead (``chat.startStream`` / ``chat.appendStream`` / ``chat.stopStream``), see
:class:`SlackReply`; notices go to the asker alone with ``chat.postEphemeral``.

Every call is made once. Slack's HTTP 429 is raised as the core's
:class:`~botkit.events.RateLimited`; a 5xx, Slack's ``internal_error``-style codes, a reset
connection or a timeout as :class:`~botkit.events.TransientPlatformError`; the core's retry
policy decides what to try again. Other refusals stay ``SlackApiError`` and are not retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.events import (
    Attachment,
    CallKind,
    ConversationKey,
    LiveReply,
    RateLimited,
    RateScope,
    TransientPlatformError,
)
from botkit.streaming.streamer import PostInstead
from botkit_slack import webapi
from botkit_slack.feedback import actions_block, feedback_blocks
from botkit_slack.lostpost import LostPosts
from botkit_slack.markers import metadata
from botkit_slack.mrkdwn import escape, to_mrkdwn
from botkit_slack.settings import SLACK_TEXT_LIMIT, SlackSettings
from botkit_slack.streams import StreamSlot, StreamStarts

if TYPE_CHECKING:
    from botkit.adapter import AdapterHost

log = logging.getLogger("botkit.slack")

T = TypeVar("T")

#: Slack's own "try again later" answers (sent with HTTP 200 or a 5xx).
TRANSIENT_CODES = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def retry_after(error: SlackApiError) -> float | None:
    """Seconds to wait if ``error`` is Slack's HTTP 429 (``Retry-After``), else None."""
    response = error.response
    if response.status_code != 429 and _code(error) != "ratelimited":
        return None
    raw = response.headers.get("Retry-After") or response.headers.get("retry-after") or "1"
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def platform_error(error: BaseException) -> TransientPlatformError | None:
    """The core's typed error for a Slack call's failure, or None for a refusal (not retried)."""
    if isinstance(error, SlackApiError):
        if not hasattr(error.response, "status_code"):
            # slack_sdk could not read the body (not JSON: a proxy's page, a cut response) and
            # hands over aiohttp's response: whether Slack took the call is unknown, as after a
            # reset connection.
            return TransientPlatformError(f"Slack's answer could not be read: {str(error).splitlines()[0]}")
        seconds = retry_after(error)
        if seconds is not None:
            return RateLimited(seconds)
        if error.response.status_code >= 500 or _code(error) in TRANSIENT_CODES:
            return TransientPlatformError(f"Slack answered {_code(error)}")
        return None
    if isinstance(error, aiohttp.ClientError | TimeoutError):
        return TransientPlatformError(f"Slack unreachable: {type(error).__name__}: {error}")
    return None


async def slack_call(call: Awaitable[T]) -> T:
    """Await one Web API call, reporting a rate limit or transient failure as the core's type."""
    try:
        return await call
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as err:
        typed = platform_error(err)
        if typed is not None:
            raise typed from err
        raise


def fit_text(markdown: str) -> str:
    """mrkdwn for ``markdown`` that Slack accepts (≤ 4,000 characters).

    The core splits the Markdown so that each message's *converted* length (``SlackReply.measure``)
    fits ``max_chars``; this is a safety net for anything that still would not fit: sent
    without formatting conversion, and as a last resort cut with a marker.
    """
    text = to_mrkdwn(markdown)
    if len(text) <= SLACK_TEXT_LIMIT:
        return text
    plain = escape(markdown)
    if len(plain) <= SLACK_TEXT_LIMIT:
        return plain
    log.warning("a reply chunk is %d characters after escaping; cutting it to Slack's limit", len(plain))
    marker = "\n… (cut: too long for one Slack message)"
    cut = plain[: SLACK_TEXT_LIMIT - len(marker)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # never end inside an entity
    return cut + marker


#: The core's transient lines (placeholder, "Thinking… 3s", queue position, notices): one
#: italic line, maybe after an emoji. Native streaming does not start with these, since the
#: answer that replaces them does not extend them.
_STATUS_LINE = re.compile(r"(?:\S{1,2}\s)?_[^\n]*_")
#: Slack's special syntax (``<!channel>``, ``<@U…>``, ``<#C…>``): defused in streamed Markdown.
_SPECIAL = re.compile(r"<(?=[!@#])")


def is_status(text: str) -> bool:
    return _STATUS_LINE.fullmatch(text.strip()) is not None


def stream_markdown(text: str) -> str:
    """Markdown for ``markdown_text``: Slack renders it; only mention syntax is defused.

    A zero-width space goes after the ``<``, so the result of a longer text always extends the
    result of its prefix (what :meth:`SlackReply.edit` needs to append only the new suffix).
    """
    return _SPECIAL.sub("<\u200b", text)


@dataclass
class _Stream:
    """A native stream standing in for the reply's first message."""

    ts: str
    sent: str  # the markdown appended so far
    text: str  # the core's text it shows (``sent`` before :func:`stream_markdown`)
    open: bool = True
    # Slack refused the stop (the asker stopped the stream, or Slack ended it): it shows the
    # text without the marker until ``chat.update`` re-sends it with it (SlackReply._mark_stopped).
    unmarked: bool = False


class SlackReply(LiveReply):
    feedback_buttons = True

    """Placeholder, edits and continuation messages of one reply in one channel/thread.

    Native streaming (``streaming = "native"``, replies in a thread): the placeholder is an
    ordinary message, so the core's status lines ("Thinking… 3s", queue position) can replace
    each other with ``chat.update``. The first edit that is answer text starts a stream with it
    (``chat.startStream``) and deletes the placeholder; every later edit that *extends* what was
    streamed appends only the new suffix (``chat.appendStream``); ``finish`` (or a continuation
    message) stops it (``chat.stopStream``). An edit that rewrites the text instead of extending
    it, or any refusal of a streaming method, stops the stream and continues with
    ``chat.update`` on the streamed message: the full text is always re-sent, so nothing is lost.
    A 429 on a streaming method is the core's :class:`RateLimited` (the stream is kept; the
    core's next edit, or its retry of the final one, sends the latest text); so is a 5xx or a lost
    connection on ``chat.startStream`` or ``chat.stopStream``, as a transient error. On
    ``chat.appendStream`` such an error may have appended the text anyway, so the reply goes on with
    ``chat.update``, which re-sends all of it.
    """

    feedback_buttons = True  # Block Kit buttons on the final message (botkit_slack.feedback)
    can_attach = True  # files_upload_v2 into the thread (needs files:write)

    def __init__(
        self,
        client: AsyncWebClient,
        settings: SlackSettings,
        *,
        team_id: str,
        channel: str,
        thread_ts: str | None,
        user: str | None = None,
        on_posted: Callable[[str, str], None] | None = None,
        status_refused: set[str] | None = None,
        status_first: dict[str, asyncio.Future[bool]] | None = None,
        stream_starts: StreamStarts | None = None,
    ) -> None:
        """``status_refused``: the adapter's set of workspaces that refused a status line
        (shared by its replies, so a workspace is asked once); ``status_first``: per workspace,
        its first status line's outcome (True: ask on), which replies that come while it is in
        flight wait for (a burst of questions would otherwise all ask before one refusal);
        ``stream_starts``: its native-stream slots per workspace (:meth:`stream_first`)."""
        self.client = client
        self.team_id = team_id
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        self.max_chars = settings.max_chars
        self.rate_key = f"slack:{team_id}"
        self.edit_rate = settings.edits_per_minute / 60.0
        self.edit_burst = settings.edit_burst
        self._scopes: dict[CallKind, RateScope] = {
            "edit": RateScope(
                self.rate_key,
                self.edit_rate,
                self.edit_burst,
                window=settings.update_window,
            ),
            "post": RateScope(
                f"slack:{team_id}:post:{channel}", settings.posts_per_minute / 60.0, settings.post_burst
            ),
            "delete": RateScope(f"slack:{team_id}:delete", settings.deletes_per_minute / 60.0, 1),
            "status": RateScope(
                f"slack:{team_id}:status", settings.statuses_per_minute / 60.0, settings.status_burst
            ),
        }
        self._status_refused = status_refused if status_refused is not None else set()
        self._status_first = status_first if status_first is not None else {}
        self.progress = settings.progress
        self.status_text = settings.status_text
        self._replace_final = settings.replace_final
        self.posted: list[str] = []
        in_thread = thread_ts is not None and user is not None
        self.native = settings.streaming == "native" and in_thread
        self._stream_starts = stream_starts if settings.streaming == "auto" and in_thread else None
        self._slot: StreamSlot | None = None  # stream_first: this reply's first message streams
        self._started_with: str | None = None  # the text its chat.startStream showed (a retry's check)
        self._on_posted = on_posted
        self._prepared: tuple[str, str] | None = None  # (ts, text) posted before the core asked
        self._first: str | None = None  # the core's id of the first message
        self._first_text: str | None = None
        self._stream: _Stream | None = None
        self._lost = LostPosts(client, channel)  # posts whose response was lost (botkit_slack.lostpost)

    def rate_scope(self, kind: CallKind) -> RateScope:
        """Slack limits each method on its own: ``chat.update`` and ``chat.delete`` (Tier 3) per
        workspace, ``chat.postMessage`` per channel, ``assistant.threads.setStatus`` per workspace."""
        return self._scopes[kind]

    posts_with_buttons = True  # chat.postMessage takes the feedback blocks: one call

    @property
    def can_show_status(self) -> bool:  # type: ignore[override]
        """A status line needs a thread (not a slash command's top-level reply), ``progress``
        other than "message", no native stream, and a workspace that has not refused one."""
        return (
            self.progress != "message"
            and self.thread_ts is not None
            and not self.native
            and self.team_id not in self._status_refused
        )

    async def show_status(self, text: str) -> bool:
        """``assistant.threads.setStatus`` on the thread; the reply's first message clears it.

        A refusal (an app without the assistant feature: ``not_allowed_token_type``,
        ``missing_scope``...) is False, and the workspace is not asked again by this process:
        the core posts a placeholder instead.
        """
        assert self.thread_ts is not None
        probe = self._status_first.get(self.team_id)
        if probe is not None and not await asyncio.shield(probe):
            return False  # the workspace's first status line was refused
        if self.team_id in self._status_refused:
            return False
        mine: asyncio.Future[bool] | None = None
        if probe is None:  # the workspace's first status line: the others wait for its outcome
            mine = self._status_first[self.team_id] = asyncio.get_running_loop().create_future()
        try:
            await slack_call(
                self.client.assistant_threads_setStatus(
                    channel_id=self.channel, thread_ts=self.thread_ts, status=text
                )
            )
        except SlackApiError as err:
            log.warning(
                "assistant.threads.setStatus refused in %s (%s); using placeholders", self.team_id, _code(err)
            )
            self._status_refused.add(self.team_id)
            if mine is not None:
                mine.set_result(False)
            return False
        finally:
            if mine is not None and not mine.done():  # shown, or failed otherwise: the others ask
                mine.set_result(True)
        return True

    async def post_with_feedback(self, text: str, turn_id: int) -> str:
        """The final (last) message posted with its 👍/👎 blocks: one ``chat.postMessage`` (or a
        native stream of it, :meth:`stream_first`: its stop carries them)."""
        streamed = await self._stream_first_post(text, turn_id)
        return streamed if streamed is not None else await self._post(text, turn_id)

    @property
    def may_stream_first(self) -> bool:
        """``streaming = "auto"``, nothing shown yet and not chosen yet: the core may still
        choose :meth:`stream_first` for the first message (its view is then Markdown)."""
        return (
            self._stream_starts is not None
            and self._slot is None
            and not self.posted
            and self._stream is None
        )

    def stream_first(self) -> RateScope | None:
        """``streaming = "auto"``: show this reply's first message as a native stream instead of
        a ``chat.postMessage``, the core having found the channel's posts contended
        (:class:`~botkit.streaming.streamer.StreamsFirst`). A slot of the workspace's stream
        budget (:class:`~botkit_slack.streams.StreamStarts`) if one is free now: the scope the
        first message then draws on; None: post it as usual (not a reply in a thread, another
        setting, no slot free, or a message already up)."""
        starts = self._stream_starts
        if starts is None or (self._slot is None and (self.posted or self._stream is not None)):
            return None
        if self._slot is None:
            self._slot = starts.take(self.team_id)
            if self._slot is None:
                return None
            weakref.finalize(self, self._slot.release)  # a reply dropped without finishing frees it too
        return RateScope(f"slack:{self.team_id}:stream", starts.per_minute / 60.0, starts.per_minute)

    async def _stream_first_post(self, text: str, turn_id: int | None) -> str | None:
        """The reply's first message as a native stream (:meth:`stream_first` chose it):
        ``chat.startStream`` with all of ``text``; for the last message (``turn_id``: the final
        with its 👍/👎) then ``chat.stopStream`` with the marker and the buttons. None: post it
        as usual (not chosen, a later message, or Slack refused the stream).

        The core retries a call that raised (a 429 on the stop): the stream that this text
        started is then only stopped again, never started twice."""
        if self._slot is None:
            return None
        stream = self._stream
        if stream is None:
            if self.posted:
                return None
            await self._start_first(text)
            stream = self._stream
            assert stream is not None
        elif not (stream.open and self.posted == [stream.ts] and self._started_with == text):
            return None  # a later message of a long reply: posted (the stream is stopped first)
        if turn_id is not None:
            await self._stop_stream(turn_id)
        return stream.ts

    async def _start_first(self, text: str) -> None:
        """``chat.startStream`` showing ``text`` whole. Refused, the workspace is not asked
        again (:meth:`StreamStarts.refuse`) and :class:`PostInstead` is raised: the core posts
        it on the channel's budget. A 429 (the workspace's Tier 2 minute spent where its slots
        did not count: a restart within the minute) posts it too, with no stream in the
        workspace until its Retry-After (:meth:`StreamStarts.hold`); a transient error is raised
        for the core to retry, on the stream budget."""
        assert self._slot is not None
        markdown = stream_markdown(text)
        try:
            ts = await self._start_stream(markdown)
        except RateLimited as err:
            # The stream budget was spent where its slots do not count (a restart within the
            # minute): the post that "edits" would make, not a wait of Tier 2's Retry-After.
            wait = err.retry_after
            log.info("chat.startStream rate limited (%.1fs); posting the reply instead", wait)
            self._drop_slot(lambda starts: starts.hold(self.team_id, wait))
            raise PostInstead("ratelimited") from err
        except SlackApiError as err:
            log.warning("chat.startStream refused (%s); posting the reply instead", _code(err))
            self._drop_slot(lambda starts: starts.refuse(self.team_id))
            raise PostInstead(_code(err)) from err
        self._stream, self._started_with, self._first = _Stream(ts, markdown, text), text, ts
        self.posted.append(ts)
        if self._on_posted is not None and self.thread_ts is not None:
            self._on_posted(self.channel, self.thread_ts)

    def _drop_slot(self, tell: Callable[[StreamStarts], None]) -> None:
        """The first message will be posted after all: its slot freed, the workspace's
        stream budget told why (``tell``)."""
        if self._stream_starts is not None:
            tell(self._stream_starts)
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    @property
    def can_replace(self) -> bool:  # type: ignore[override]
        """A final posted anew stays in the thread; a top-level reply (a slash command's) or a
        native stream (also one that fell back to edits after it started) keeps its message."""
        return self._replace_final and self.thread_ts is not None and not self.native and self._stream is None

    async def delete(self, message_id: str) -> None:
        await slack_call(self.client.chat_delete(channel=self.channel, ts=message_id))

    def rendered(self, text: str) -> str:
        """The message's ``text`` as Slack returns it: the mrkdwn :func:`fit_text` sends."""
        return fit_text(text)

    def rendered_view(self, chunks: Sequence[str]) -> list[str]:
        """The final view's texts as Slack returns them: mrkdwn, except a first message that
        the native stream shows (or will show) in full, whose ``text`` is the stream's Markdown
        (:func:`stream_markdown`): the restart pass must find a view that was applied shown."""
        return self.rendered_views(chunks)[0]

    def rendered_views(self, chunks: Sequence[str]) -> list[list[str]]:
        """:meth:`rendered_view` and, where that differs, the view as ``chat.update`` shows it
        (mrkdwn): a ``chat.startStream`` or ``chat.appendStream`` refused after the intent was
        spooled, or a refused ``chat.stopStream`` (:meth:`_mark_stopped`), falls back to it."""
        edited = [fit_text(chunk) for chunk in chunks]
        if not (chunks and self._stream_shows(chunks[0])):
            return [edited]
        view = [stream_markdown(chunks[0]), *edited[1:]]
        if view == edited:
            return [view]
        # Undecided (the core chooses just before the call: stream_first): either may show it.
        return [edited, view] if self.may_stream_first else [view, edited]

    def _stream_shows(self, text: str) -> bool:
        """Whether the first message will show ``text`` as streamed Markdown, following the
        path :meth:`_edit` takes: a stream yet to start (a placeholder posted, ``text`` not a
        status line), an open one that ``text`` extends, or a stopped one already showing it
        (no call is made for a message that did not change); otherwise ``chat.update``. With
        ``streaming = "auto"``, a first message that :meth:`stream_first` chose to stream: yet
        to be posted, or the stream showing exactly ``text``."""
        markdown, stream = stream_markdown(text), self._stream
        if self._slot is not None:
            if stream is None:
                return not self.posted and bool(markdown.strip())
            return markdown == stream.sent
        if self.may_stream_first:
            return bool(markdown.strip())
        if not self.native or self._first is None:
            return False
        if stream is None:
            return not is_status(text) and bool(markdown.strip())
        return markdown.startswith(stream.sent) if stream.open else markdown == stream.sent

    def measure(self, text: str) -> int:
        """An upper bound of the converted mrkdwn's length, cheap and additive.

        Slack counts the converted text. Conversion only shortens Markdown syntax (``**`` to
        ``*``, ``[t](u)`` to ``<u|t>``, ``## `` to ``*``) except for the escapes ``&amp;`` (+4)
        and ``&lt;``/``&gt;`` (+3), so this bound never undercounts. It must stay cheap: the core
        measures every line of the answer on every edit.
        """
        return len(text) + 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))

    @property
    def streamed_ts(self) -> str | None:
        """The native stream's message (it replaced the placeholder), if one was started."""
        return self._stream.ts if self._stream is not None else None

    async def prepare(
        self, host: AdapterHost, *, where: ConversationKey | None = None, persona: str | None = None
    ) -> str:
        """Post the first message now, before the core has the message (a slash command's reply
        needs its ``ts`` as the conversation's thread); :meth:`post_placeholder` adopts it.

        The core posts it (``host.post_first``), under its retry policy and the shared budget,
        with the before-notice of the persona the channel or ``persona`` will get.
        """
        ts = await host.post_first(self, where=where, persona=persona)
        self._prepared = (ts, self._first_text or "")
        return ts

    async def post_placeholder(self, text: str) -> str:
        """Post the first message (or show ``text`` in the one :meth:`prepare` posted)."""
        if self._prepared is not None:
            ts, shown = self._prepared
            if text != shown:
                await self._update(ts, text)
            self._prepared = None
            return ts
        ts = await self._post(text)
        self._first, self._first_text = ts, text
        return ts

    async def edit(self, message_id: str, text: str) -> None:
        await self._edit(message_id, text, None)

    async def edit_with_feedback(self, message_id: str, text: str, turn_id: int) -> None:
        """The final edit with 👍/👎 (:mod:`botkit_slack.feedback`): ``chat.update`` with
        ``blocks`` and ``text``; a native stream gets its buttons from ``chat.stopStream``'s
        ``blocks`` (appended under the streamed text)."""
        await self._edit(message_id, text, turn_id)

    async def _edit(self, message_id: str, text: str, turn_id: int | None) -> None:
        if self.native and message_id == self._first and await self._stream_edit(message_id, text):
            if turn_id is not None:
                await self._stop_stream(turn_id)
            return
        if self._stream is not None and message_id == self._first:
            await self._stop_stream(mark=False)  # a streaming message refuses chat.update
            self._stream.unmarked = False  # the update below carries the marker
            message_id = self._stream.ts
        await self._update(message_id, text, turn_id)

    async def post_continuation(self, text: str) -> str:
        streamed = await self._stream_first_post(text, None)
        if streamed is not None:
            return streamed
        await self._stop_stream()  # the first message is complete; the rest is edited as usual
        return await self._post(text)

    async def post_notice(self, text: str) -> bool:
        """Show ``text`` to the asker alone (``chat.postEphemeral``); False if Slack refuses.

        A 429 or a transient failure is raised for the core to retry (one ephemeral message:
        safe to send again, since a failed call showed nothing).
        """
        if self.user is None:
            return False
        try:
            await slack_call(
                self.client.chat_postEphemeral(
                    channel=self.channel, user=self.user, text=fit_text(text), thread_ts=self.thread_ts
                )
            )
        except SlackApiError as err:
            log.info("ephemeral notice refused in %s (%s); replying openly", self.channel, _code(err))
            return False
        await self.discard_prepared()  # a slash command's placeholder that nothing will fill
        return True

    async def finish(self) -> None:
        await self._stop_stream()
        if self._slot is not None:
            self._slot.release()

    async def fail(self, error: str) -> None:
        """A first message streamed by :meth:`stream_first` is stopped (marked) with the error
        shown; otherwise nothing more to do."""
        if self._slot is not None:
            await self._stop_stream()
            self._slot.release()

    async def attach(self, attachment: Attachment) -> bool:
        """Upload ``attachment`` into the reply's thread with slack_sdk's ``files_upload_v2``
        (``files.getUploadURLExternal``, the bytes POSTed to the URL it returns,
        ``files.completeUploadExternal`` with ``channel_id`` and ``thread_ts``). A refusal
        (``missing_scope`` without ``files:write``) is False: the text alone is the answer."""
        try:
            await slack_call(
                self.client.files_upload_v2(
                    channel=self.channel,
                    thread_ts=self.thread_ts or self._first,  # a slash command's reply is its thread
                    file=attachment.data,
                    filename=attachment.filename,
                    title=attachment.filename,
                    alt_txt=attachment.alt_text or None,
                )
            )
        except (SlackApiError, SlackRequestError) as err:
            log.warning("Slack refused the upload of %s in %s: %s", attachment.filename, self.channel, err)
            return False
        return True

    async def discard_prepared(self) -> None:
        """Delete the message :meth:`prepare` posted if the core never used it (a duplicate).

        Like deleting the placeholder a native stream replaced, a clean-up tried once: if Slack
        refuses (a 429 included) it is only logged.
        """
        if self._prepared is None:
            return
        ts, self._prepared = self._prepared[0], None
        await self._delete(ts, "the unused placeholder")

    # -- Web API calls ---------------------------------------------------------------------------
    async def _update(self, ts: str, text: str, turn_id: int | None = None) -> None:
        """``chat.update``; with ``turn_id`` the text also goes into blocks, under the buttons'
        row (``text`` stays the notification and search text)."""
        mrkdwn, blocks = _shown_as(text, turn_id)
        await slack_call(
            webapi.chat_update(
                self.client,
                channel=self.channel,
                ts=ts,
                text=mrkdwn,
                blocks=blocks,
                metadata=metadata(self.marker),
            )
        )

    async def _post(self, text: str, turn_id: int | None = None) -> str:
        # A reply that started at the top of a channel (a slash command) continues in the
        # thread of its first message, not as more top-level messages.
        thread_ts = self.thread_ts or (self.posted[0] if self.posted else None)
        mrkdwn, blocks = _shown_as(text, turn_id)
        marker = self.marker
        ts = await self._lost.post(
            thread_ts=thread_ts,
            text=mrkdwn,
            marker=marker,
            known=self.posted,
            call=lambda: slack_call(
                webapi.chat_post_message(
                    self.client,
                    channel=self.channel,
                    thread_ts=thread_ts,
                    text=mrkdwn,
                    blocks=blocks,
                    metadata=metadata(marker),
                )
            ),
            update=lambda found: self._update(found, text, turn_id),
        )
        self.posted.append(ts)
        if self._on_posted is not None:
            self._on_posted(self.channel, thread_ts or ts)
        return ts

    async def _delete(self, ts: str, what: str) -> None:
        """A clean-up, tried once: nothing a user reads depends on it, so a failure is logged."""
        try:
            await slack_call(self.client.chat_delete(channel=self.channel, ts=ts))
        except (SlackApiError, TransientPlatformError) as err:
            log.warning("cannot delete %s %s: %s", what, ts, err)

    # -- native streaming ------------------------------------------------------------------------
    async def _start_stream(self, markdown: str) -> str:
        """``chat.startStream`` in the reply's thread, to its asker, showing ``markdown``: its ts."""
        assert self.thread_ts is not None and self.user is not None
        thread_ts, user = self.thread_ts, self.user

        async def start() -> str:
            response = await slack_call(
                self.client.chat_startStream(
                    channel=self.channel,
                    thread_ts=thread_ts,
                    markdown_text=markdown,
                    recipient_user_id=user,
                    recipient_team_id=self.team_id,
                )
            )
            return str(response["ts"])

        async def extend(ts: str, suffix: str) -> None:
            await slack_call(self.client.chat_appendStream(channel=self.channel, ts=ts, markdown_text=suffix))

        return await self._lost.start(
            thread_ts=thread_ts, markdown=markdown, known=self.posted, call=start, extend=extend
        )

    async def _stream_edit(self, placeholder_ts: str, text: str) -> bool:
        """Show ``text`` through the native stream; False: use ``chat.update`` instead."""
        markdown = stream_markdown(text)
        stream = self._stream
        if stream is None:
            if is_status(text) or not markdown.strip():
                return False  # a status line: the placeholder shows it
            try:
                ts = await self._start_stream(markdown)
            except SlackApiError as err:
                log.warning("chat.startStream refused (%s); streaming with chat.update", _code(err))
                self.native = False
                return False
            self._stream = _Stream(ts, markdown, text)
            await self._delete(placeholder_ts, "the placeholder")
            return True
        if not stream.open:
            return False
        if not markdown.startswith(stream.sent):
            log.debug("reply text was rewritten; stopping the stream and editing instead")
            self.native = False  # edit() stops the stream, then uses chat.update
            return False
        suffix = markdown[len(stream.sent) :]
        if not suffix:
            stream.text = text
            return True
        try:
            await slack_call(
                self.client.chat_appendStream(channel=self.channel, ts=stream.ts, markdown_text=suffix)
            )
        except RateLimited:
            raise  # nothing was appended; the stream goes on with the core's next edit
        except (SlackApiError, TransientPlatformError) as err:
            log.warning("chat.appendStream failed (%s); continuing with chat.update", err)
            self.native = False
            return False
        stream.sent, stream.text = markdown, text
        return True

    async def _stop_stream(self, turn_id: int | None = None, *, mark: bool = True) -> None:
        """``chat.stopStream`` with the reply's marker (and, with ``turn_id``, the final's 👍/👎),
        once it succeeded or was refused (logged: the text is already there).

        A refused stop leaves the stream showing its text without the marker, so that a later
        turn's restart pass could take it for its own (an unmarked stream is found by where it
        is): unless the caller updates the message itself (``mark=False``), it is marked by
        :meth:`_mark_stopped`. A 429 or a transient failure is raised and the stream stays open
        (or unmarked), so the core's retry of the call that needed the stop (the final edit, a
        continuation, ``finish``) stops (or marks) it again, before anything else.
        """
        stream = self._stream
        if stream is None:
            return
        if stream.open:
            try:
                # The reply marker goes here: chat.startStream takes no metadata, so a stopped
                # stream is marked like every other reply message (botkit_slack.markers).
                blocks = [actions_block(turn_id)] if turn_id is not None else None
                await slack_call(
                    self.client.chat_stopStream(
                        channel=self.channel, ts=stream.ts, blocks=blocks, metadata=metadata(self.marker)
                    )
                )
            except SlackApiError as err:
                log.warning("chat.stopStream refused for %s: %s", stream.ts, _code(err))
                stream.unmarked = self.marker is not None
            stream.open = False
        if stream.unmarked and mark:
            await self._mark_stopped(stream, turn_id)

    async def _mark_stopped(self, stream: _Stream, turn_id: int | None) -> None:
        """A stream that Slack stopped before botkit could (``stopped_by_user``, or ended by
        Slack) no longer streams, so ``chat.update`` takes it again (slack_sdk's ``chat_stream``
        names that its fallback for a stream that expired): its text re-sent with the marker,
        and the final's buttons. Refused too, the text is there but unmarked: it is logged and
        handed to the core (:attr:`LiveReply.left_unmarked`), which records it durably for the
        next start or a sweep to mark (a later turn's restart would otherwise take it for its
        own stream)."""
        try:
            await self._update(stream.ts, stream.text, turn_id)
        except SlackApiError as err:
            log.warning("cannot mark the stopped stream %s: %s", stream.ts, _code(err))
            if self.left_unmarked is not None:
                await self.left_unmarked(stream.ts, turn_id is not None)
        stream.unmarked = False


def _shown_as(text: str, turn_id: int | None) -> tuple[str, list[dict[str, object]] | None]:
    """A message's ``text`` as Slack takes it, and, for a final with its 👍/👎 (``turn_id``),
    its blocks: posts and updates show a reply's text the same way."""
    mrkdwn = fit_text(text)
    return mrkdwn, feedback_blocks(mrkdwn, turn_id) if turn_id is not None else None


def _code(err: SlackApiError) -> str:
    data = err.response.data
    code = data.get("error") if isinstance(data, dict) else None
    return str(code or f"HTTP {err.response.status_code}")
