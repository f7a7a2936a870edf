"""A fake Slack for tests: the Web API methods botkit calls, Socket Mode, and signed HTTP events.

It speaks the real wire protocols, so the real ``slack_sdk`` and ``slack_bolt`` run against it
unchanged: point ``AsyncWebClient(base_url=fake.api_url)`` (botkit: ``slack.api_url``) at it.

Web API (``POST``/``GET`` ``/api/<method>``, form, query or JSON bodies; token from the
``Authorization`` header or a ``token`` argument):

- ``auth.test`` (bot token) -> the bot's identity, with the granted scopes in ``X-OAuth-Scopes``;
- ``apps.connections.open`` (app token) -> ``ws://127.0.0.1:PORT/socket-mode?ticket=N``;
- ``chat.postMessage``, ``chat.update`` (``msg_too_long`` above 4,000 characters,
  ``message_not_found``, ``streaming_state_conflict`` while a message streams; ``markdown_text``
  instead of ``text``, read back as sent like a stream's, ``markdown_text_conflict`` with ``text``
  or ``blocks``), ``chat.delete``,
  ``chat.postEphemeral`` (kept in :attr:`FakeSlack.ephemerals`; ``user_not_in_channel`` for the
  pairs in :attr:`FakeSlack.not_in_channel`), ``conversations.replies`` (the thread of a parent
  or a reply, narrowed by ``oldest``/``latest``/``inclusive``), ``conversations.history`` (a
  channel's or DM's top-level messages, newest first, narrowed the same way, paged by ``limit``
  and ``cursor``; message ``metadata`` with ``include_all_metadata``);
- the directory: ``conversations.list`` (the channels in :attr:`FakeSlack.channels`, paged by
  ``limit`` and ``cursor``), ``conversations.info`` (``channel_not_found``), ``usergroups.list``
  and ``usergroups.users.list`` (``no_such_subteam``) from :attr:`FakeSlack.usergroups`; add them
  with :meth:`FakeSlack.add_channel` and :meth:`FakeSlack.add_usergroup`, rename a channel with
  :meth:`FakeSlack.rename_channel` (which also sends ``channel_rename`` over Socket Mode). Make
  membership lookups fail with the knobs below (``fail_with_error("usergroups.users.list", ...)``,
  ``fail_with_status``, ``delay``);
- native streaming: ``chat.startStream`` (``thread_ts`` required; ``recipient_user_id`` and
  ``recipient_team_id`` required outside DMs), ``chat.appendStream``, ``chat.stopStream``
  (``message_not_in_streaming_state`` once stopped; its ``metadata`` is kept, ``startStream``
  takes none). :meth:`FakeSlack.stop_by_user_before` plays the asker pressing the stream's stop:
  it no longer streams (``chat.update`` takes it again, as slack_sdk's ``chat_stream`` documents
  for a stream that ended server-side), and ``chat.appendStream``/``chat.stopStream`` on it
  answer ``stopped_by_user`` (an error code of both methods); :meth:`FakeSlack.expire_stream`
  plays Slack ending a stream itself (``message_not_in_streaming_state`` then). A streamed message's ``text`` is its Markdown so far, exactly as sent (the
  ``markdown_text`` pieces joined), while it streams and once stopped, and
  :attr:`SlackMessage.appended` lists every piece it was sent in. That is an assumption: Slack
  documents no read back of a streamed message (/work/shared/facts/platforms.md §7 has the
  methods' arguments only); botkit's restart pass relies on it (``SlackReply.rendered_view``).
- external file uploads (what slack_sdk's ``files_upload_v2`` does): ``files.getUploadURLExternal``
  (``filename``, ``length``) returns an ``upload_url`` on this same server; the bytes POSTed
  there are kept; ``files.completeUploadExternal`` (``files`` JSON, ``channel_id``,
  ``thread_ts``) shares them (``file_upload_size_mismatch`` if the bytes and ``length`` differ).
  :attr:`FakeSlack.files` keeps every :class:`SlackFile` with its bytes and where it was shared.

Block Kit: ``chat.postMessage``, ``chat.update`` and ``chat.stopStream`` keep the ``blocks`` they
were given (JSON list or form-encoded string) in :attr:`SlackMessage.blocks` (an update without
``blocks`` removes them, as on Slack; ``stopStream`` appends them) and every value in
:attr:`SlackMessage.blocks_history`; more than 50 blocks answer ``msg_blocks_too_many``, a
section over 3,000 characters, an empty actions block, a block type messages do not take or a
``markdown`` block (standard Markdown in its ``text``, required, at most 12,000 characters)
without text or over that ``invalid_blocks``. ``chat.update`` takes a ``markdown`` block beside
other blocks (with ``text`` as the notification fallback), where ``markdown_text`` takes none.
:meth:`FakeSlack.click_button` plays a user clicking a button of a message: a ``block_actions``
payload (user, container, channel, message, ``actions`` with ``action_id``, ``block_id``,
``value`` and ``action_ts``, ``response_url``) in an ``interactive`` Socket Mode envelope; its
ack lands in :attr:`FakeSlack.acks` like any other.

Bad tokens answer ``invalid_auth``; a method whose scope is not in :attr:`FakeSlack.scopes`
answers ``missing_scope`` with ``needed``. Every call is recorded in :attr:`FakeSlack.calls`,
and :attr:`FakeSlack.messages` keeps the current text of every message by ``(channel, ts)``.

Knobs: :meth:`FakeSlack.fail_with_429` answers the next N calls of a method with HTTP 429 and
``Retry-After``; :meth:`FakeSlack.fail_with_status` with another HTTP status (a 5xx); both can
pick the calls by their arguments (``match``: e.g. the ``chat.update`` carrying the final
text); :meth:`FakeSlack.fail_with_error` with an error code; :attr:`FakeSlack.bot_not_in`
lists channels where posting answers ``not_in_channel``; :meth:`FakeSlack.limit_rate` enforces "at most N calls per window" on a method,
for the workspace or per channel (``chat.postMessage``'s "1 per second per channel"), answered
like Slack, with 429 and ``Retry-After``; :meth:`FakeSlack.delay` answers a method's
calls only after a pause (a slow Web API); :meth:`FakeSlack.limit_every` answers every Nth call of
some methods with 429 for a stretch of calls (a virtual "minute" counted in calls, not seconds);
:meth:`FakeSlack.limit_bucket` is a token bucket on a method ("1 per second, short bursts
tolerated"); :meth:`FakeSlack.enforce_real_limits` turns on Slack's published per-method limits
(shared/facts/platforms.md §1) at once.

``assistant.threads.setStatus`` (``channel_id``, ``thread_ts``, ``status``): the thread's status
line ("<app> is thinking…"). :attr:`FakeSlack.statuses` keeps every status each thread showed,
"" when it was cleared; as on Slack, a bot message posted in the thread clears it.

Socket Mode: each connection gets ``hello``; :meth:`FakeSlack.push_slash_command` sends a
``slash_commands`` envelope (its ``response_url`` posts land in :attr:`FakeSlack.responses`);
:meth:`FakeSlack.push_event` sends an ``events_api`` envelope (to one connection, or all of them with ``broadcast=True``, to play
Slack delivering one event to two processes) and :attr:`FakeSlack.acks` records the
acknowledgements. :meth:`FakeSlack.drop_sockets` closes every Socket Mode connection from
Slack's side (slack_sdk reconnects: ``apps.connections.open`` again, counted in
:attr:`FakeSlack.connections_opened`). :func:`post_signed_event` posts an Events API request, signed with a real
HMAC signature (or a wrong one), to an HTTP-mode endpoint. Example::

    async with FakeSlack() as slack:
        event = slack.mention_event("what is 2+2?")
        await slack.wait_for_connections(1)
        await slack.push_event(event)
        await slack.wait_for(lambda: slack.thread_replies(event["channel"], event["ts"]))
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web

from botkit.localserver import LocalServer
from botkit.testing.holds import Hold

__all__ = [
    "ApiCall",
    "FakeSlack",
    "SlackFile",
    "SlackMessage",
    "events_api_body",
    "post_signed_event",
    "sign",
]

SLACK_TEXT_LIMIT = 4000
MARKDOWN_TEXT_LIMIT = 12_000  # markdown_text of chat.*Stream
ALL_SCOPES = (
    "app_mentions:read",
    "chat:write",
    "commands",
    "channels:history",
    "groups:history",
    "im:history",
    "channels:read",
    "groups:read",
    "usergroups:read",
    "files:write",
)
_METHOD_SCOPES = {
    "conversations.list": "channels:read",
    "conversations.info": "channels:read",
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
}
_METHOD_SCOPES |= {
    method: "chat:write"
    for method in (
        "chat.postMessage",
        "chat.update",
        "chat.delete",
        "chat.postEphemeral",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "assistant.threads.setStatus",
    )
} | {"files.getUploadURLExternal": "files:write", "files.completeUploadExternal": "files:write"}


@dataclass(frozen=True)
class ApiCall:
    """One Web API call as the fake received it (``status`` is the HTTP status it answered)."""

    method: str
    args: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int
    error: str | None


@dataclass
class SlackFile:
    """A file uploaded the external way: ``files.getUploadURLExternal`` reserved it, its bytes
    were POSTed to the upload URL, ``files.completeUploadExternal`` shared it (``channel`` and
    ``thread_ts`` are where; both None until then)."""

    id: str
    filename: str
    length: int
    alt_txt: str | None
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None


@dataclass
class _Fault:
    """One call to answer with an HTTP error instead of the method's result."""

    status: int
    error: str
    retry_after: float | None
    match: Callable[[Mapping[str, Any]], bool] | None


@dataclass
class _EveryNth:
    """:meth:`FakeSlack.limit_every`: every ``nth`` call of ``methods`` is a 429 until ``calls``
    calls of them have been seen."""

    methods: frozenset[str]
    nth: int
    calls: int
    retry_after: float
    seen: int = 0

    def limits(self, method: str) -> bool:
        """Whether this call (counted if it is one of ``methods``) is answered with a 429."""
        if method not in self.methods or self.seen >= self.calls:
            return False
        self.seen += 1
        return self.seen % self.nth == 0


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None
    history: list[str] = field(default_factory=list)  # every text it had, oldest first
    streaming: bool = False  # a native stream not stopped yet
    stopped_by_user: bool = False  # the asker stopped the stream (stop_by_user_before)
    appended: list[str] = field(default_factory=list)  # a stream's pieces (start, appends, stop)
    blocks: list[dict[str, Any]] | None = None  # the Block Kit blocks it shows now, if any
    blocks_history: list[list[dict[str, Any]] | None] = field(
        default_factory=list
    )  # each blocks it was given
    metadata: dict[str, Any] | None = None  # its message metadata (returned with include_all_metadata)

    @property
    def edits(self) -> int:
        return len(self.history) - 1

    def buttons(self) -> list[dict[str, Any]]:
        """Every button of its ``actions`` blocks, in order."""
        return [
            element
            for block in self.blocks or []
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        ]


def _metadata(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """``metadata`` as a dict (a JSON body sends an object; a form body a JSON string)."""
    raw = args.get("metadata")
    if raw is None or raw == "":
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    return dict(value) if isinstance(value, dict) else None


def _blocks(args: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """``blocks`` as a list (a JSON body sends a list; a form body a JSON string)."""
    raw = args.get("blocks")
    if raw is None or raw == "":
        return None
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list):
        raise ValueError("invalid_blocks")
    return [dict(b) for b in value]


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def events_api_body(
    event: Mapping[str, Any], *, team_id: str, api_app_id: str, event_id: str | None = None
) -> dict[str, Any]:
    """The ``event_callback`` body Slack sends for ``event`` (HTTP body / Socket Mode payload)."""
    return {
        "token": "verification-token-unused",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": uuid.uuid4().hex,
    }


async def post_signed_event(
    url: str,
    body: Mapping[str, Any] | str,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    form: bool = False,
) -> tuple[int, str]:
    """POST an Events API request as Slack does; returns (HTTP status, response text).

    ``timestamp`` defaults to now (pass an old one to test stale-request rejection);
    ``signature`` overrides the real one (to test a forged request). ``form=True`` sends a
    mapping form-encoded, as Slack sends slash commands (see :meth:`FakeSlack.slash_command`).
    """
    encode: Callable[[Mapping[str, Any]], str] = urllib.parse.urlencode if form else json.dumps
    raw = body if isinstance(body, str) else encode(body)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature if signature is not None else sign(signing_secret, ts, raw),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason
    async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as resp:
        return resp.status, await resp.text()


#: The Block Kit block types a message may carry (docs.slack.dev/reference/block-kit/blocks);
#: any other ``type`` answers ``invalid_blocks``.
MESSAGE_BLOCKS = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
MARKDOWN_BLOCK_LIMIT = 12_000  # a markdown block's ``text`` ("Limit 12,000 characters max.")


def _blocks_problem(blocks: list[dict[str, Any]]) -> str | None:
    """Slack's refusal of a message's blocks: too many, a type messages do not take, a
    section's text over 3,000 characters, an actions block without elements, a ``markdown``
    block without its (required) ``text`` string or with more than 12,000 characters of it.

    A markdown block is kept as sent; Slack says "passing a single block may result in
    multiple blocks after translation", so a read back of it may differ (botkit reads back a
    message's ``text`` and its ``actions`` block only)."""
    if len(blocks) > 50:
        return "msg_blocks_too_many"
    for block in blocks:
        kind = block.get("type")
        if kind not in MESSAGE_BLOCKS:
            return "invalid_blocks"
        if kind == "section" and len(str((block.get("text") or {}).get("text", ""))) > 3000:
            return "invalid_blocks"
        if kind == "actions" and not block.get("elements"):
            return "invalid_blocks"
        if kind == "markdown" and not _markdown_block_text_ok(block.get("text")):
            return "invalid_blocks"
    return None


def _markdown_block_text_ok(text: object) -> bool:
    return isinstance(text, str) and bool(text) and len(text) <= MARKDOWN_BLOCK_LIMIT


class FakeSlack(LocalServer):
    """A local Slack workspace with one app installed (see the module docstring)."""

    def __init__(
        self,
        *,
        team_id: str = "T0FAKE",
        api_app_id: str = "A0FAKE",
        bot_user_id: str = "U0BOTKIT",
        bot_id: str = "B0BOTKIT",
        bot_token: str = "xoxb-fake-bot-token",
        app_token: str = "xapp-fake-app-token",
        scopes: tuple[str, ...] = ALL_SCOPES,
    ) -> None:
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.scopes = set(scopes)
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], SlackMessage] = {}
        self.acks: list[dict[str, Any]] = []
        self.ephemerals: list[SlackMessage] = []  # chat.postEphemeral (user in .user)
        self.deleted: list[SlackMessage] = []
        self.not_in_channel: set[tuple[str, str]] = set()  # (user, channel): no ephemerals
        self.bot_not_in: set[str] = set()  # channels the bot is not a member of (not_in_channel)
        self.responses: list[dict[str, Any]] = []  # posts to slash commands' response_url
        self.files: dict[str, SlackFile] = {}  # external uploads by file id, in order
        self.sockets: list[web.WebSocketResponse] = []
        self.connections_opened = 0
        self._ts = itertools.count(1)
        self._base_time = int(time.time())
        self._faults: dict[str, list[_Fault]] = {}
        self._limits: dict[str, tuple[int, float, bool]] = {}
        self._buckets: dict[str, tuple[float, float, bool]] = {}  # method -> (rate/s, burst, per channel)
        self._bucket_state: dict[str, tuple[float, float]] = {}  # scope -> (tokens, updated)
        self.statuses: dict[tuple[str, str], list[str]] = {}  # (channel, thread_ts) -> every status
        self._delays: dict[str, float] = {}
        self._every: _EveryNth | None = None
        self._holds: list[Hold] = []
        self._losses: list[tuple[str, str, Callable[[Mapping[str, Any]], bool] | None]] = []  # lose_response
        self._user_stops: list[str] = []  # methods before whose next call on a stream the user stops it
        self._accepted: dict[str, deque[float]] = {}
        self._changed = asyncio.Condition()
        self._socket_tasks: set[asyncio.Task[None]] = set()
        self.channels: dict[str, dict[str, Any]] = {}  # id -> conversations.list's channel object
        self.usergroups: dict[str, dict[str, Any]] = {}  # id -> usergroups.list's object + "users"
        self.add_channel("general", "C0GENERAL")

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket-mode", self._socket)
        app.router.add_post("/response-url/{id}", self._response_url)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        await self._listen(app, host, port)

    async def stop(self) -> None:
        for held in self._holds:
            held.dropped = True  # its caller is gone (killed): what was not applied never is
            held.release()
        for ws in list(self.sockets):
            await ws.close()
        await self._close()

    @property
    def api_url(self) -> str:
        """What ``slack.api_url`` / ``AsyncWebClient(base_url=...)`` should be."""
        return f"http://127.0.0.1:{self.port}/api/"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """A ``[slack]`` table for a botkit connected to this fake over Socket Mode."""
        return {
            "bot_token": self.bot_token,
            "app_token": self.app_token,
            "api_url": self.api_url,
            **overrides,
        }

    # -- knobs ------------------------------------------------------------------------------------
    def fail_with_429(
        self,
        method: str,
        count: int = 1,
        retry_after: float = 1.0,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (whose arguments satisfy ``match``, if
        given) with HTTP 429 and ``Retry-After``."""
        fault = _Fault(429, "ratelimited", retry_after, match)
        self._faults.setdefault(method, []).extend([fault] * count)

    def fail_with_status(
        self,
        method: str,
        status: int = 500,
        count: int = 1,
        error: str = "internal_error",
        match: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (whose arguments satisfy ``match``, if
        given) with HTTP ``status`` (a 5xx: a server error) and ``{"ok": false, "error": error}``."""
        fault = _Fault(status, error, None, match)
        self._faults.setdefault(method, []).extend([fault] * count)

    def fail_with_error(
        self,
        method: str,
        error: str,
        count: int = 1,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (whose arguments satisfy ``match``, if
        given) with ``{"ok": false, "error": error}`` (HTTP 200, as Slack refuses)."""
        self.fail_with_status(method, 200, count, error, match)

    def limit_rate(self, method: str, calls: int, per_seconds: float, *, per_channel: bool = False) -> None:
        """Enforce at most ``calls`` successful calls of ``method`` in any ``per_seconds`` window,
        in the whole workspace (Slack's tiers) or, ``per_channel``, in each channel."""
        self._limits[method] = (calls, per_seconds, per_channel)

    def limit_bucket(
        self, method: str, per_second: float, burst: float, *, per_channel: bool = False
    ) -> None:
        """Enforce a token bucket on ``method``: ``per_second`` calls on average, ``burst`` back
        to back (Slack's "about 1 per second per channel, short bursts tolerated"), for the
        workspace or per channel. A call over it gets 429 with the seconds until a token frees."""
        self._buckets[method] = (per_second, burst, per_channel)

    def enforce_real_limits(self) -> None:
        """Slack's per-method limits as published (shared/facts/platforms.md §1): ``chat.update``
        and ``chat.delete`` Tier 3 (50 per minute per workspace), ``chat.postMessage`` 1/s per
        channel with bursts of 4, ``chat.startStream``/``chat.stopStream`` Tier 2 (20/min),
        ``chat.appendStream`` Tier 4 (100/min), ``chat.postEphemeral`` Tier 4, and
        ``assistant.threads.setStatus`` "Special", played as 600/min (the ⚠ third-party figure).
        Opt-in: most tests would only slow down under them."""
        for method, calls in (
            ("chat.update", 50),
            ("chat.delete", 50),
            ("chat.startStream", 20),
            ("chat.stopStream", 20),
            ("chat.appendStream", 100),
            ("chat.postEphemeral", 100),
            ("assistant.threads.setStatus", 600),
        ):
            self.limit_rate(method, calls, 60.0)
        self.limit_bucket("chat.postMessage", 1.0, 4.0, per_channel=True)

    def status_of(self, channel: str, thread_ts: str) -> str:
        """The status line a thread shows now ("" for none)."""
        shown = self.statuses.get((channel, thread_ts))
        return shown[-1] if shown else ""

    def delay(self, method: str, seconds: float) -> None:
        """Answer every later call of ``method`` only ``seconds`` after it arrived (0: at once again).

        A call is recorded in :attr:`calls` when it is answered (``at`` is still its arrival).
        """
        self._delays[method] = seconds

    def limit_every(
        self, methods: tuple[str, ...], *, nth: int = 3, calls: int = 60, retry_after: float = 1.0
    ) -> None:
        """Answer every ``nth`` call of ``methods`` (counted together) with 429 and ``Retry-After``,
        for the next ``calls`` calls of them; later calls are answered normally.

        Slack's bursts of 429s last a minute of real time; counting calls instead makes that
        "minute" virtual, so a drill of it takes seconds. The 429s sent are ``calls // nth`` once
        that many calls were made.
        """
        self._every = _EveryNth(frozenset(methods), nth, calls, retry_after)

    def hold(
        self, method: str, *, apply: bool = False, match: Callable[[Mapping[str, Any]], bool] | None = None
    ) -> Hold:
        """Hold the next call of ``method`` (whose arguments satisfy ``match``): with ``apply``
        it takes effect first (the platform applied it, its response is not back yet), without
        it nothing happens yet; either way it is answered only once released. Await
        ``hold(...).reached`` and SIGKILL the caller there to drill that crash window."""
        held = Hold(method, apply, match)
        self._holds.append(held)
        return held

    def lose_response(
        self,
        method: str,
        *,
        how: Literal["500", "reset"] = "500",
        count: int = 1,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        """Apply the next ``count`` calls of ``method`` (whose arguments satisfy ``match``), then
        lose their answers: ``how`` "500" answers HTTP 500 ``internal_error`` after applying,
        "reset" closes the connection without an answer. (A timeout: :meth:`hold` with ``apply``,
        never released, and a short ``slack.web_timeout``.)"""
        self._losses.extend([(method, how, match)] * count)

    def _take_loss(self, method: str, args: Mapping[str, Any]) -> str | None:
        for index, (lost, how, match) in enumerate(self._losses):
            if lost == method and (match is None or match(args)):
                del self._losses[index]
                return how
        return None

    def stop_by_user_before(self, method: str) -> None:
        """The asker stops a native stream just before the next call of ``method`` on it (a
        ``chat.stopStream``, ``chat.appendStream``) reaches Slack: that call, and every later
        streaming call on that message, answers ``stopped_by_user``."""
        self._user_stops.append(method)

    def expire_stream(self, channel: str, ts: str) -> None:
        """Slack ends a native stream on its own (slack_sdk's ``chat_stream``: "if the stream
        expires server-side"): it no longer streams, so ``chat.appendStream``/``chat.stopStream``
        on it answer ``message_not_in_streaming_state`` and ``chat.update`` takes it again; its
        text and (absent) metadata stay as they were. Slack documents no time after which a
        stream expires, nor the code its calls answer then: that is this fake's assumption."""
        message = self.messages[(channel, ts)]
        assert message.streaming, "only a stream that still streams can expire"
        message.streaming = False

    def _user_stop(self, method: str, args: Mapping[str, Any]) -> None:
        message = self.messages.get((str(args.get("channel")), str(args.get("ts"))))
        if method in self._user_stops and message is not None and message.streaming:
            self._user_stops.remove(method)
            message.streaming, message.stopped_by_user = False, True

    def _take_hold(self, method: str, args: Mapping[str, Any]) -> Hold | None:
        for held in self._holds:
            if held.method == method and not held.taken and (held.match is None or held.match(args)):
                held.taken, held.args = True, dict(args)
                return held
        return None

    async def drop_sockets(self, code: int = 1001) -> int:
        """Close every Socket Mode connection from Slack's side (as on a Slack deploy); returns
        how many were closed. slack_sdk reconnects through ``apps.connections.open``."""
        dropped = list(self.sockets)
        for ws in dropped:
            await ws.close(code=code, message=b"fake Slack dropped the connection")
        return len(dropped)

    # -- the directory ---------------------------------------------------------------------------
    def add_channel(self, name: str, channel_id: str | None = None, *, private: bool = False) -> str:
        """A channel the bot can see (``conversations.list``); returns its id."""
        channel_id = channel_id or f"C0{uuid.uuid4().hex[:8].upper()}"
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "name_normalized": name,
            "is_channel": not private,
            "is_group": private,
            "is_private": private,
            "is_archived": False,
            "is_member": True,
            "created": self._base_time,
            "context_team_id": self.team_id,
        }
        return channel_id

    def add_usergroup(self, handle: str, users: list[str], group_id: str | None = None) -> str:
        """A user group (``@handle``) with these members; returns its id (``S0…``)."""
        group_id = group_id or f"S0{uuid.uuid4().hex[:8].upper()}"
        self.usergroups[group_id] = {
            "id": group_id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": handle.replace("-", " ").title(),
            "description": "",
            "handle": handle,
            "is_external": False,
            "date_create": self._base_time,
            "user_count": len(users),
            "users": list(users),
        }
        return group_id

    async def rename_channel(self, channel_id: str, name: str) -> dict[str, Any]:
        """Rename a channel, as a user would, and send the ``channel_rename`` event."""
        channel = self.channels[channel_id]
        channel["name"] = channel["name_normalized"] = name
        event = {
            "type": "group_rename" if channel["is_private"] else "channel_rename",
            "channel": {"id": channel_id, "name": name, "created": channel["created"]},
            "event_ts": self.next_ts(),
        }
        return await self.push_event(event)

    # -- what tests look at ----------------------------------------------------------------------
    def calls_of(self, method: str, *, ok_only: bool = False) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def rate_limited(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self.calls if c.status == 429 and (method is None or c.method == method)]

    def thread_replies(self, channel: str, thread_ts: str) -> list[SlackMessage]:
        """Messages the bot posted in a thread (or top-level replies with ``thread_ts`` None)."""
        return sorted(
            (
                m
                for m in self.messages.values()
                if m.channel == channel and m.thread_ts == thread_ts and m.bot_id == self.bot_id
            ),
            key=lambda m: float(m.ts),
        )

    def bot_messages(self, channel: str | None = None) -> list[SlackMessage]:
        return sorted(
            (
                m
                for m in self.messages.values()
                if m.bot_id == self.bot_id and (channel is None or m.channel == channel)
            ),
            key=lambda m: float(m.ts),
        )

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is true (re-checked after every API call and ack)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: bool(predicate()))

    async def wait_for_connections(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: len(self.sockets) >= count, timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- events ----------------------------------------------------------------------------------
    def next_ts(self) -> str:
        return f"{self._base_time}.{next(self._ts):06d}"

    def message_event(
        self,
        text: str,
        *,
        channel: str = "C0GENERAL",
        user: str = "U0ALICE",
        thread_ts: str | None = None,
        channel_type: str = "channel",
        **extra: Any,
    ) -> dict[str, Any]:
        """A ``message`` event from a user (``channel_type`` ``im`` for a DM, channel ``D...``)."""
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": self.next_ts(),
            "team": self.team_id,
            "channel_type": channel_type,
            "event_ts": "",
        }
        event["event_ts"] = event["ts"]
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        event.update(extra)
        return event

    def mention_event(
        self,
        text: str,
        *,
        channel: str = "C0GENERAL",
        user: str = "U0ALICE",
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """An ``app_mention`` event whose text starts with the bot's ``<@U...>`` mention."""
        event = self.message_event(
            f"<@{self.bot_user_id}> {text}", channel=channel, user=user, thread_ts=thread_ts
        )
        event["type"] = "app_mention"
        del event["channel_type"]
        return event

    def _store_user_message(self, event: Mapping[str, Any]) -> None:
        if event.get("type") in ("message", "app_mention") and "ts" in event and "channel" in event:
            key = (str(event["channel"]), str(event["ts"]))
            if key not in self.messages and not event.get("subtype") and not event.get("bot_id"):
                text = str(event.get("text") or "")
                self.messages[key] = SlackMessage(
                    channel=key[0],
                    ts=key[1],
                    text=text,
                    user=event.get("user"),
                    bot_id=event.get("bot_id"),
                    thread_ts=event.get("thread_ts"),
                    history=[text],
                )

    async def push_event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        connection: int = 0,
        broadcast: bool = False,
    ) -> dict[str, Any]:
        """Send an ``events_api`` envelope over Socket Mode; returns the envelope sent.

        Redeliver an event by pushing it again with the same ``event_id`` and
        ``retry_attempt=1, retry_reason="timeout"``.
        """
        if not self.sockets:
            raise RuntimeError("no Socket Mode connection to push to")
        self._store_user_message(event)
        payload = events_api_body(event, team_id=self.team_id, api_app_id=self.api_app_id, event_id=event_id)
        targets = list(self.sockets) if broadcast else [self.sockets[connection]]
        envelope: dict[str, Any] = {}
        for ws in targets:
            envelope = {
                "envelope_id": str(uuid.uuid4()),
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": retry_reason,
                "payload": payload,
            }
            await ws.send_str(json.dumps(envelope))
        return envelope

    def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        channel: str = "C0GENERAL",
        user: str = "U0ALICE",
        user_name: str = "alice",
    ) -> dict[str, Any]:
        """A slash command payload as Slack sends it (``command`` with its ``/``)."""
        trigger = uuid.uuid4().hex
        return {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "team_domain": "fake-workspace",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else channel.lower(),
            "user_id": user,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": f"http://127.0.0.1:{self.port}/response-url/{trigger[:8]}",
            "trigger_id": f"{next(self._ts)}.{trigger[:12]}",
        }

    async def push_slash_command(self, payload: Mapping[str, Any], *, connection: int = 0) -> dict[str, Any]:
        """Send a ``slash_commands`` envelope over Socket Mode; returns the envelope sent."""
        if not self.sockets:
            raise RuntimeError("no Socket Mode connection to push to")
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": dict(payload),
        }
        await self.sockets[connection].send_str(json.dumps(envelope))
        return envelope

    async def click_button(
        self,
        message: SlackMessage,
        action_id: str,
        *,
        user: str = "U0ALICE",
        user_name: str = "alice",
        connection: int = 0,
    ) -> dict[str, Any]:
        """``user`` clicks the button ``action_id`` on ``message``: a ``block_actions`` payload in
        an ``interactive`` Socket Mode envelope, as Slack sends it; returns the envelope (its ack
        lands in :attr:`acks`: :meth:`wait_for_ack`). Raises if the message shows no such button."""
        if not self.sockets:
            raise RuntimeError("no Socket Mode connection to push to")
        current, button, block = self._button(message, action_id)
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": "interactive",
            "accepts_response_payload": False,
            "payload": self._block_actions(current, button, block, user, user_name),
        }
        await self.sockets[connection].send_str(json.dumps(envelope))
        return envelope

    def _button(
        self, message: SlackMessage, action_id: str
    ) -> tuple[SlackMessage, dict[str, Any], dict[str, Any]]:
        """The message as it is now, its button ``action_id`` and the actions block holding it."""
        current = self.messages.get((message.channel, message.ts))
        if current is None:
            raise LookupError(f"message {message.ts} in {message.channel} does not exist")
        button = next((b for b in current.buttons() if b.get("action_id") == action_id), None)
        block = next(
            (
                b
                for b in current.blocks or []
                if b.get("type") == "actions" and button in b.get("elements", [])
            ),
            None,
        )
        if button is None or block is None:
            shown = [b.get("action_id") for b in current.buttons()]
            raise LookupError(f"message {message.ts} has no button {action_id!r} (it shows {shown})")
        return current, button, block

    def _block_actions(
        self,
        current: SlackMessage,
        button: dict[str, Any],
        block: dict[str, Any],
        user: str,
        user_name: str,
    ) -> dict[str, Any]:
        """The ``block_actions`` payload of a click on ``button``, shaped as Slack sends it."""
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": current.ts,
            "channel_id": current.channel,
            "is_ephemeral": False,
        }
        if current.thread_ts:
            container["thread_ts"] = current.thread_ts
        trigger = uuid.uuid4().hex
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "verification-token-unused",
            "container": container,
            "trigger_id": f"{next(self._ts)}.{trigger[:12]}",
            "team": {"id": self.team_id, "domain": "fake-workspace"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": current.channel, "name": current.channel.lower()},
            "message": {**self._wire(current), "type": "message"},
            "state": {"values": {}},
            "response_url": f"http://127.0.0.1:{self.port}/response-url/{trigger[:8]}",
            "actions": [
                {
                    "action_id": button.get("action_id"),
                    "block_id": block.get("block_id", ""),
                    "text": button.get("text"),
                    "value": button.get("value", ""),
                    "type": "button",
                    "action_ts": self.next_ts(),
                }
            ],
        }

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append({"id": request.match_info["id"], **body})
        await self._notify()
        return web.json_response({"ok": True})

    def record_user_message(self, event: Mapping[str, Any]) -> None:
        """Keep a user's message (as ``conversations.replies`` would show it) without sending it."""
        self._store_user_message(event)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        await self.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks), timeout)
        return next(a for a in self.acks if a.get("envelope_id") == envelope_id)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self.sockets),
                    "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.api_app_id},
                }
            )
        )
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.acks.append(json.loads(msg.data))
                    await self._notify()
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
            await self._notify()
        return ws

    # -- Web API ---------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            else:
                args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        token = str(args.pop("token", "") or "")
        if not token:
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip()
        if self._delays.get(method):
            await asyncio.sleep(self._delays[method])
        held = self._take_hold(method, args)
        if held is not None and not held.apply:
            held.reached.set()
            await held.released.wait()
            if held.dropped:
                return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        status, body_out, headers = self._answer(method, token, args)
        lost = self._take_loss(method, args) if body_out.get("ok") else None
        if lost is not None:
            self.calls.append(ApiCall(method, args, arrived, status, None))
            await self._notify()
            if lost == "reset":
                assert request.transport is not None
                request.transport.abort()  # applied; the client never reads an answer
                raise ConnectionResetError("fake Slack dropped the connection after applying")
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if held is not None and held.apply:
            self.calls.append(
                ApiCall(method, args, arrived, status, None if body_out.get("ok") else body_out.get("error"))
            )
            await self._notify()
            held.reached.set()
            await held.released.wait()
            return web.json_response(body_out, status=status, headers=headers)
        self.calls.append(
            ApiCall(method, args, arrived, status, None if body_out.get("ok") else body_out.get("error"))
        )
        await self._notify()
        return web.json_response(body_out, status=status, headers=headers)

    def _answer(
        self, method: str, token: str, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"X-OAuth-Scopes": ",".join(sorted(self.scopes))} if token == self.bot_token else {}
        if method == "apps.connections.open":
            if token != self.app_token:
                error = "not_allowed_token_type" if token == self.bot_token else "invalid_auth"
                return 200, {"ok": False, "error": error}, {}
        elif token != self.bot_token:
            return 200, {"ok": False, "error": "invalid_auth" if token else "not_authed"}, {}
        needed = _METHOD_SCOPES.get(method) or (
            self._history_scope(args)
            if method in ("conversations.replies", "conversations.history")
            else None
        )
        if needed and needed not in self.scopes:
            return (
                200,
                {
                    "ok": False,
                    "error": "missing_scope",
                    "needed": needed,
                    "provided": ",".join(sorted(self.scopes)),
                },
                headers,
            )
        fault = self._fault_for(method, args)
        if fault is not None:
            if fault.retry_after is not None:
                seconds = fault.retry_after
                headers["Retry-After"] = str(math.ceil(seconds)) if seconds >= 1 else f"{seconds:.3f}"
            return fault.status, {"ok": False, "error": fault.error}, headers
        if method in ("chat.postMessage", "chat.startStream") and args.get("channel") in self.bot_not_in:
            return 200, {"ok": False, "error": "not_in_channel"}, headers
        self._user_stop(method, args)
        handler = self._handler(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, headers
        return 200, handler(args), headers

    def _fault_for(self, method: str, args: dict[str, Any]) -> _Fault | None:
        """The error this call gets instead of its answer: an injected fault first, then the
        rate limits in force (every method's, the per-method ones, the buckets); None: none."""
        fault = self._take_fault(method, args)
        if fault is None and self._every is not None and self._every.limits(method):
            fault = _Fault(429, "ratelimited", self._every.retry_after, None)
        if fault is None and (limited := self._rate_check(method, args)) is not None:
            fault = _Fault(429, "ratelimited", limited, None)
        if fault is None and (limited := self._bucket_check(method, args)) is not None:
            fault = _Fault(429, "ratelimited", limited, None)
        return fault

    def _handler(self, method: str) -> Callable[[Mapping[str, Any]], dict[str, Any]] | None:
        """The method's handler, None for a method the fake does not know."""
        return {
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "assistant.threads.setStatus": self._set_status,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "conversations.list": self._conversations_list,
            "conversations.info": self._conversations_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroup_users,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)

    @staticmethod
    def _history_scope(args: Mapping[str, Any]) -> str:
        channel = str(args.get("channel", ""))
        return {"G": "groups:history", "D": "im:history"}.get(channel[:1], "channels:history")

    def _take_fault(self, method: str, args: Mapping[str, Any]) -> _Fault | None:
        faults = self._faults.get(method, [])
        for index, fault in enumerate(faults):
            if fault.match is None or fault.match(args):
                return faults.pop(index)
        return None

    def _rate_check(self, method: str, args: Mapping[str, Any]) -> float | None:
        """Seconds to wait if :meth:`limit_rate` says 429 to this call, else None (and count it)."""
        limit = self._limits.get(method)
        now = time.monotonic()
        scope = f"{method} {args.get('channel')}" if limit is not None and limit[2] else method
        accepted = self._accepted.setdefault(scope, deque())
        if limit is not None:
            calls, window, _ = limit
            while accepted and accepted[0] <= now - window:
                accepted.popleft()
            if len(accepted) >= calls:
                return max(0.001, accepted[0] + window - now)
        accepted.append(now)
        return None

    def _bucket_check(self, method: str, args: Mapping[str, Any]) -> float | None:
        """Seconds to wait if :meth:`limit_bucket` says 429 to this call, else None (and take a token)."""
        bucket = self._buckets.get(method)
        if bucket is None:
            return None
        rate, burst, per_channel = bucket
        scope = f"{method} {args.get('channel')}" if per_channel else method
        now = time.monotonic()
        tokens, updated = self._bucket_state.get(scope, (burst, now))
        tokens = min(burst, tokens + (now - updated) * rate)
        if tokens < 1:
            self._bucket_state[scope] = (tokens, now)
            return max(0.001, (1 - tokens) / rate)
        self._bucket_state[scope] = (tokens - 1, now)
        return None

    def _set_status(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if not channel or not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        self.statuses.setdefault((channel, thread_ts), []).append(str(args.get("status") or ""))
        return {"ok": True}

    def _conversations_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        types = str(args.get("types") or "public_channel").split(",")
        shown = [
            {k: v for k, v in c.items()}
            for c in self.channels.values()
            if ("private_channel" if c["is_private"] else "public_channel") in types
        ]
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = shown[start : start + limit]
        more = start + limit < len(shown)
        return {
            "ok": True,
            "channels": page,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _conversations_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel") or ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": dict(channel)}

    def _usergroups_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        with_users = str(args.get("include_users") or "").lower() in ("1", "true")
        groups = [
            {k: v for k, v in g.items() if k != "users" or with_users} for g in self.usergroups.values()
        ]
        return {"ok": True, "usergroups": groups}

    def _usergroup_users(self, args: Mapping[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group["users"])}

    def _auth_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": "botkit",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _connections_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self.connections_opened += 1
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket-mode?ticket={self.connections_opened}"}

    def _post_message(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, text = args.get("channel"), args.get("text")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not text and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self.next_ts()
        thread_ts = args.get("thread_ts") or None
        message = SlackMessage(
            channel=str(channel),
            ts=ts,
            text=str(text or ""),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            thread_ts=str(thread_ts) if thread_ts else None,
            history=[str(text or "")],
            blocks=_blocks(args),
            metadata=_metadata(args),
        )
        message.blocks_history.append(message.blocks)
        self.messages[(message.channel, ts)] = message
        if message.thread_ts and self.status_of(message.channel, message.thread_ts):
            self.statuses[(message.channel, message.thread_ts)].append("")  # a reply clears it
        return {"ok": True, "channel": channel, "ts": ts, "message": self._wire(message)}

    def _update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        message = self.messages.get(key)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.bot_id != self.bot_id:
            return {"ok": False, "error": "cant_update_message"}
        if message.streaming:
            return {"ok": False, "error": "streaming_state_conflict"}
        markdown = args.get("markdown_text")
        if markdown and (args.get("text") or args.get("blocks")):
            return {"ok": False, "error": "markdown_text_conflict"}
        text = str(markdown or args.get("text") or "")
        if len(text) > (MARKDOWN_TEXT_LIMIT if markdown else SLACK_TEXT_LIMIT):
            return {"ok": False, "error": "msg_too_long"}
        blocks = _blocks(args)
        if blocks is not None and (problem := _blocks_problem(blocks)) is not None:
            return {"ok": False, "error": problem}
        message.text = text
        message.history.append(text)
        message.blocks = blocks  # as on Slack: an update without blocks removes them
        message.metadata = _metadata(args) or message.metadata  # kept unless replaced
        message.blocks_history.append(blocks)
        return {"ok": True, "channel": key[0], "ts": key[1], "text": text}

    def _delete(self, args: Mapping[str, Any]) -> dict[str, Any]:
        key = (str(args.get("channel")), str(args.get("ts")))
        message = self.messages.get(key)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.bot_id != self.bot_id:
            return {"ok": False, "error": "cant_delete_message"}
        self.deleted.append(self.messages.pop(key))
        return {"ok": True, "channel": key[0], "ts": key[1]}

    def _post_ephemeral(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, user, text = str(args.get("channel") or ""), str(args.get("user") or ""), args.get("text")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        if (user, channel) in self.not_in_channel:
            return {"ok": False, "error": "user_not_in_channel"}
        if not text and not args.get("blocks") and not args.get("markdown_text"):
            return {"ok": False, "error": "no_text"}
        thread_ts = args.get("thread_ts") or None
        message = SlackMessage(
            channel=channel,
            ts=self.next_ts(),
            text=str(text or args.get("markdown_text") or ""),
            user=user,
            bot_id=self.bot_id,
            thread_ts=str(thread_ts) if thread_ts else None,
            history=[str(text or "")],
        )
        self.ephemerals.append(message)
        return {"ok": True, "message_ts": message.ts}

    def shared_files(self, channel: str, thread_ts: str | None = None) -> list[SlackFile]:
        """Files shared in ``channel`` (in the thread ``thread_ts``, if given), in upload order."""
        return [
            f
            for f in self.files.values()
            if f.channel == channel and (thread_ts is None or f.thread_ts == thread_ts)
        ]

    def _get_upload_url(self, args: Mapping[str, Any]) -> dict[str, Any]:
        filename, length = str(args.get("filename") or ""), str(args.get("length") or "")
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        alt = args.get("alt_txt")
        self.files[file_id] = SlackFile(file_id, filename, int(length), str(alt) if alt else None)
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the raw bytes (or a multipart ``file``), answered ``OK - <length>``."""
        upload = self.files.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="file not found")
        if request.content_type.startswith("multipart/"):
            part = (await request.post()).get("file")
            data = part.file.read() if isinstance(part, web.FileField) else str(part or "").encode()
        else:
            data = await request.read()
        upload.data = data
        await self._notify()
        return web.Response(text=f"OK - {len(data)}")

    def _complete_upload(self, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            listed = json.loads(str(args.get("files") or ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        shared = []
        for item in listed if isinstance(listed, list) else []:
            upload = self.files.get(str(item.get("id")))
            if upload is None or upload.data is None:
                return {"ok": False, "error": "file_not_found"}
            if len(upload.data) != upload.length:
                return {"ok": False, "error": "file_upload_size_mismatch"}
            upload.title = item.get("title") or upload.filename
            upload.channel = str(args.get("channel_id") or "") or None
            upload.thread_ts = str(args.get("thread_ts") or "") or None
            upload.initial_comment = args.get("initial_comment") or None
            shared.append(
                {
                    "id": upload.id,
                    "name": upload.filename,
                    "title": upload.title,
                    "size": upload.length,
                    "alt_txt": upload.alt_txt,
                    "channels": [upload.channel] if upload.channel else [],
                }
            )
        if not shared:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "files": shared}

    def _start_stream(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, thread_ts = str(args.get("channel") or ""), args.get("thread_ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        if not channel.startswith("D") and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            return {"ok": False, "error": "invalid_arguments"}
        text = str(args.get("markdown_text") or "")
        if len(text) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        ts = self.next_ts()
        message = SlackMessage(
            channel=channel,
            ts=ts,
            text=text,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            thread_ts=str(thread_ts),
            history=[text],
            streaming=True,
            appended=[text] if text else [],
        )
        self.messages[(channel, ts)] = message
        if self.status_of(channel, str(thread_ts)):  # a message in the thread, as a post (⚠ assumed)
            self.statuses[(channel, str(thread_ts))].append("")
        return {"ok": True, "channel": channel, "ts": ts}

    def _streaming_message(self, args: Mapping[str, Any]) -> SlackMessage | dict[str, Any]:
        message = self.messages.get((str(args.get("channel")), str(args.get("ts"))))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.stopped_by_user:
            return {"ok": False, "error": "stopped_by_user"}
        if not message.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        return message

    @staticmethod
    def _append(message: SlackMessage, text: str) -> None:
        message.appended.append(text)
        message.text += text
        message.history.append(message.text)

    def _append_stream(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self._streaming_message(args)
        if isinstance(message, dict):
            return message
        text = str(args.get("markdown_text") or "")
        if not text:
            return {"ok": False, "error": "no_text"}
        if len(text) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        self._append(message, text)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _stop_stream(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self._streaming_message(args)
        if isinstance(message, dict):
            return message
        if len(str(args.get("markdown_text") or "")) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        if args.get("markdown_text"):
            self._append(message, str(args["markdown_text"]))
        blocks = _blocks(args)
        if blocks is not None:  # "appended to the end of the message"
            if (problem := _blocks_problem(blocks)) is not None:
                return {"ok": False, "error": problem}
            message.blocks = [*(message.blocks or []), *blocks]
            message.blocks_history.append(message.blocks)
        message.metadata = _metadata(args) or message.metadata  # stopStream takes metadata
        message.streaming = False
        return {"ok": True, "channel": message.channel, "ts": message.ts, "message": self._wire(message)}

    def _replies(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The thread of ``ts`` (a parent or a reply), parent first; ``oldest``/``latest``
        (with ``inclusive``) narrow the replies, while the parent is always returned, as Slack does."""
        channel, ts = str(args.get("channel")), str(args.get("ts"))
        asked = self.messages.get((channel, ts))
        if asked is None:
            return {"ok": False, "error": "thread_not_found"}
        root = asked.thread_ts or ts
        thread = sorted(
            (m for m in self.messages.values() if m.channel == channel and root in (m.ts, m.thread_ts)),
            key=lambda m: float(m.ts),
        )
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or math.inf)

        def in_range(message: SlackMessage) -> bool:
            at = float(message.ts)
            if inclusive:
                return oldest <= at <= latest
            return oldest < at < latest

        thread = [m for m in thread if m.ts == root or in_range(m)]
        limit = int(args.get("limit") or 1000)
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        return {
            "ok": True,
            "messages": [self._wire(m, metadata=metadata) for m in thread[:limit]],
            "has_more": len(thread) > limit,
        }

    def _history(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """A conversation's top-level messages (thread parents included, replies not), newest
        first, like Slack's: ``oldest``/``latest`` with ``inclusive``, ``limit`` (default 100,
        at most 999), and ``cursor`` / ``response_metadata.next_cursor`` for the next page."""
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        channel = str(args["channel"])
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or math.inf)

        def in_range(message: SlackMessage) -> bool:
            at = float(message.ts)
            return oldest <= at <= latest if inclusive else oldest < at < latest

        history = sorted(
            (
                m
                for m in self.messages.values()
                if m.channel == channel and m.thread_ts in (None, m.ts) and in_range(m)
            ),
            key=lambda m: float(m.ts),
            reverse=True,
        )
        limit = min(999, int(args.get("limit") or 100))
        start = int(str(args.get("cursor") or "0").removeprefix("next:") or 0)
        page = history[start : start + limit]
        more = start + limit < len(history)
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        return {
            "ok": True,
            "messages": [self._wire(m, metadata=metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""},
        }

    @staticmethod
    def _wire(message: SlackMessage, *, metadata: bool = False) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": "message", "text": message.text, "ts": message.ts}
        if metadata and message.metadata:
            wire["metadata"] = message.metadata
        if message.blocks:
            wire["blocks"] = message.blocks
        if message.user:
            wire["user"] = message.user
        if message.bot_id:
            wire["bot_id"] = message.bot_id
        if message.thread_ts:
            wire["thread_ts"] = message.thread_ts
        return wire
