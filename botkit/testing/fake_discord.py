"""A fake Discord for tests: the REST routes and the gateway WebSocket that botkit uses.

It speaks Discord's wire protocol closely enough that the real discord.py runs against it
unchanged (point it here with ``discord.api_url = fake.api_url`` and
``discord.gateway_url = fake.gateway_url``). Everything is recorded, and the current content of
every message is kept, so a test asserts what a user would see.

REST (under ``/api/v10``; bot routes need ``Authorization: Bot <token>``, else 401)
-----------------------------------------------------------------------------------
- ``GET /users/@me``, ``GET /oauth2/applications/@me`` (login), ``GET /gateway``,
  ``GET /gateway/bot``.
- ``PUT /applications/{app}/commands`` and ``PUT /applications/{app}/guilds/{gid}/commands``
  (command sync; the definitions are kept in :attr:`FakeDiscord.commands`). A guild added with
  ``add_guild(..., commands_scope=False)`` (invited without ``applications.commands``) or unknown
  to the fake answers 403, code 50001 Missing Access.
- ``POST /interactions/{id}/{token}/callback`` (types 4, 5, 6, 7 and 8: 6 and 7 only for a
  component interaction, 7 edits the clicked message; ``?with_response`` gives 200 with the
  callback object, else 204).
- Components: messages keep the ``components`` they were posted or edited with (a PATCH without
  the key keeps them); action rows of 1 to 5 buttons with a ``custom_id`` of 1 to 100
  characters, else 400 code 50035. :meth:`FakeDiscord.click_button` plays a member clicking one
  (INTERACTION_CREATE type 3 with ``data.custom_id`` and ``component_type`` 2, and the message),
  :meth:`FakeDiscord.buttons` lists a message's buttons.
- ``GET/PATCH/DELETE /webhooks/{app}/{token}/messages/@original`` and ``/messages/{mid}``,
  ``POST /webhooks/{app}/{token}`` (follow-ups; ``flags: 64`` makes one ephemeral). As on
  Discord, a follow-up sent while a deferred response is still loading edits that response and
  its ephemeral flag is ignored; once the loading response was deleted, a follow-up is a new
  message with its own flags. Deleted messages move to :attr:`FakeDiscord.deleted_messages`.
  The token expires ``token_lifetime`` seconds after the interaction was created (401, code
  50027), as Discord's does after 15 minutes.
- ``GET /users/@me/guilds``, ``GET /guilds/{gid}/channels`` (channel names), ``POST
  /users/@me/channels`` (a DM channel with ``recipient_id``); :meth:`FakeDiscord.rename_channel`
  renames a channel and dispatches CHANNEL_UPDATE, :meth:`FakeDiscord.role_id` gives a role's id.
- ``GET /channels/{cid}``, ``POST /channels/{cid}/messages``,
  ``GET/PATCH /channels/{cid}/messages/{mid}`` (PATCH: only the bot's own messages, else 403 code
  50005; as on Discord, an interaction's ephemeral message is 404 Unknown Message here, and a
  non-ephemeral interaction response can be edited with the bot token),
  ``POST /channels/{cid}/messages/{mid}/threads``
  (the thread gets the message's id, and THREAD_CREATE is dispatched; a second thread on the
  same message answers 400 code 160004; in a channel of :attr:`FakeDiscord.no_thread_permission`
  403 code 50013; in one of :attr:`FakeDiscord.too_many_threads` 400 code 160006).
- Message content over 2,000 characters is refused with 400 (code 50035), as Discord does.
- Content is kept with its leading and trailing whitespace stripped, on create and edit (as
  Discord is reported to: :func:`_trimmed`); one of only whitespace is empty (400, code 50006).
- Replies: a ``message_reference`` to a message in another channel is refused (400 code 50035,
  ``REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL``), to an unknown one too (``REPLIES_UNKNOWN_MESSAGE``)
  unless ``fail_if_not_exists`` is false, which posts a normal message with no reference.
- A message sent in response to an interaction (the original response, a follow-up) carries
  ``interaction_metadata`` (the interaction's id, type and user) and the deprecated
  ``interaction``, in every answer that returns it (channel listings included).
- Files: ``POST /channels/{cid}/messages`` and ``POST /webhooks/{app}/{token}`` also take
  ``multipart/form-data`` (``payload_json`` plus ``files[n]`` parts, what discord.py sends for a
  ``discord.File``); the message gets Discord's ``attachments`` objects (id, filename, size,
  content_type, url) and :attr:`FakeDiscord.files` keeps each part's bytes by message id.

Real limits: ``FakeDiscord(limits=DiscordLimits())`` enforces Discord's per-route fixed windows
(5 per 5 s per channel for message create, edit and delete; typing and thread start on request;
an interaction's webhook routes per interaction token, outside the global count) and the global
50/s, with the real ``X-RateLimit-*`` headers and 429 body (:mod:`botkit.testing.discord_limits`;
off by default). ``DELETE /channels/{cid}/messages/{mid}`` deletes a bot message, ``POST
/channels/{cid}/typing`` is recorded in :attr:`FakeDiscord.typing`, and every text a message
showed is kept in :attr:`FakeDiscord.versions` (:meth:`FakeDiscord.versions_of`).

Rate limits: :meth:`FakeDiscord.rate_limit` makes the next ``count`` requests matching a method
and path pattern answer 429 with Discord's body (``message``, ``retry_after``, ``global``) and
headers (``Retry-After``, ``X-RateLimit-*``, and ``Via`` unless ``via=False``: discord.py
retries a 429 itself only when ``Via`` is present, otherwise it raises ``HTTPException``).
:meth:`FakeDiscord.fail` answers matching requests with another status instead (a 503: discord.py
raises ``DiscordServerError`` at once on bot routes; it retries 500, 502 and 504 there itself, and
any 5xx on webhook routes). Both can pick requests by their JSON body (``match``: e.g. the edit
carrying the final text). ``rate_limit(..., every=N)`` answers only every Nth matching request
with 429 for a stretch of requests (a virtual "minute" counted in requests, not seconds).

Gateway (``gateway_url``)
-------------------------
HELLO (``heartbeat_interval``), HEARTBEAT -> HEARTBEAT_ACK, IDENTIFY -> READY (user,
application, session_id, ``resume_gateway_url`` pointing back here, guilds unavailable) then
one GUILD_CREATE per guild (channels, roles, members, threads). A session outlives its connection:
:meth:`FakeDiscord.drop_gateway` closes the connections from Discord's side (close code 4000 by
default, which discord.py answers with RESUME), dispatches meanwhile are kept for the session, and
RESUME (recorded in :attr:`FakeDiscord.resumes`) replays every dispatch after the client's ``seq``
with its original ``s`` (kept in :attr:`FakeDiscord.replayed`), then RESUMED. With
:attr:`FakeDiscord.invalidate_resumes` (or for an unknown session) RESUME is answered
INVALID_SESSION (op 9, ``d: false``), so the client identifies again and what it missed is gone;
with :attr:`FakeDiscord.replay_seen_messages` a replay also repeats every MESSAGE_CREATE the
session had already received (delivery is at least once). With
``compress=zlib-stream`` in the query (what discord.py asks for) frames are zlib-stream binary
frames, each ending in a ``Z_SYNC_FLUSH``; otherwise plain JSON text frames. Dispatches respect
the identified intents (GUILD_MESSAGES, DIRECT_MESSAGES) and MESSAGE_CONTENT (content is empty
in guild messages that do not mention the bot unless the intent was asked for).

Driving it: :meth:`FakeDiscord.add_user` (a guild member with role names),
:meth:`~FakeDiscord.slash_command`, :meth:`~FakeDiscord.autocomplete`,
:meth:`~FakeDiscord.user_message`, :meth:`~FakeDiscord.redeliver`, :meth:`~FakeDiscord.dm_channel`,
:meth:`~FakeDiscord.bot_message` (a message an earlier bot process left, e.g. a half-written reply);
and reading it: :attr:`~FakeDiscord.calls`, :attr:`~FakeDiscord.messages`,
:meth:`~FakeDiscord.interaction_messages`, :meth:`~FakeDiscord.ephemeral_messages`,
:meth:`~FakeDiscord.messages_in`, :meth:`~FakeDiscord.public_messages_in`,
:meth:`~FakeDiscord.wait_for`::

    async with FakeDiscord() as fake:
        settings = {"token": fake.token, "api_url": fake.api_url, "gateway_url": fake.gateway_url}
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from botkit.localserver import LocalServer
from botkit.testing.discord_limits import DiscordLimits, RateLimiter
from botkit.testing.holds import Hold

DISCORD_EPOCH_MS = 1420070400000
MESSAGE_LIMIT = 2000

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

CHANNEL_TEXT = 0
CHANNEL_DM = 1
CHANNEL_PUBLIC_THREAD = 11

COMPONENT_ACTION_ROW = 1
COMPONENT_BUTTON = 2

OPTION_SUBCOMMAND = 1
OPTION_STRING = 3


@dataclass(frozen=True)
class RecordedCall:
    """One REST request as the fake received it, and the status it answered."""

    method: str
    path: str  # without the /api/v10 prefix
    query: Mapping[str, str]
    body: Any
    status: int
    at: float = 0.0  # time.monotonic() on arrival


@dataclass
class _RateLimitRule:
    method: str
    pattern: re.Pattern[str]
    retry_after: float
    count: int
    via: bool
    is_global: bool
    after: int
    match: Callable[[Any], bool] | None = None
    status: int = 429  # another status: answered as a server error, not a rate limit
    every: int = 0  # rate_limit(every=N): every Nth of the next ``count`` matches, not all of them
    seen: int = 0

    def applies(self, method: str, path: str, body: Any) -> bool:
        """Whether this rule answers the request (counting down ``after`` and ``count``)."""
        if self.method != method or not self.pattern.search(path):
            return False
        if self.match is not None and not self.match(body):
            return False
        if self.every:
            self.seen += 1
            return self.seen <= self.count and self.seen % self.every == 0
        if self.count <= 0:
            return False
        if self.after > 0:
            self.after -= 1
            return False
        self.count -= 1
        return True


@dataclass
class FakeInteraction:
    id: int
    token: str
    guild_id: int | None
    channel_id: int
    user_id: int
    created: float
    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    original_deleted: bool = False


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    compressor: Any | None  # zlib compressobj for zlib-stream, else None (text frames)
    session_id: str
    sequence: int = 0
    intents: int | None = None  # None until IDENTIFY/RESUME
    sent: list[dict[str, Any]] = field(default_factory=list)  # the session's dispatches, for RESUME

    async def send(self, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload, separators=(",", ":"))
        if self.compressor is None:
            await self.ws.send_str(raw)
        else:
            data = self.compressor.compress(raw.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)


_BODY = web.RequestKey("fake_discord_body", object)
_FILES = web.RequestKey("fake_discord_files", list)


@dataclass(frozen=True)
class FakeFile:
    """One ``files[n]`` part of a multipart message create, as Discord received it."""

    field: str
    filename: str
    content_type: str
    data: bytes


def _json(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response with exactly ``Content-Type: application/json``, as Discord sends (discord.py
    parses a body as JSON only on that exact value)."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _body(request: web.Request) -> Any:
    """The request's parsed JSON body (read once by the middleware)."""
    return request[_BODY]


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).isoformat()


class FakeDiscord(LocalServer):
    """A local Discord (REST + gateway); see the module docstring."""

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_name: str = "botkit",
        guild_name: str = "botkit-test",
        roles: tuple[str, ...] = ("admin", "legal", "medical", "student"),
        heartbeat_interval_ms: float = 41250.0,
        token_lifetime: float = 15 * 60.0,
        limits: DiscordLimits | None = None,
    ) -> None:
        # Discord's per-route buckets and global limit (botkit.testing.discord_limits); None: off
        self.limiter = RateLimiter(limits) if limits is not None else None
        self.versions: dict[int, list[tuple[float, str]]] = {}  # message id -> (when, what it showed)
        self.typing: list[tuple[int, float]] = []  # (channel id, when) of each typing indicator
        self.token = token or "fake." + secrets.token_urlsafe(24)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.token_lifetime = token_lifetime
        self._counter = itertools.count(1)
        self.bot_user = self._user(self.snowflake(), bot_name, bot=True)
        self.application_id = self.snowflake()
        self.users: dict[int, dict[str, Any]] = {int(self.bot_user["id"]): self.bot_user}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_messages: dict[int, dict[str, Any]] = {}
        self.files: dict[int, list[FakeFile]] = {}  # message id -> the files attached to it
        self.no_thread_permission: set[int] = set()  # channels where starting a thread answers 403
        self.too_many_threads: set[int] = set()  # channels where starting a thread answers 400/160006
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> definitions
        self.interactions: dict[int, FakeInteraction] = {}
        self.calls: list[RecordedCall] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []  # RESUME payloads (token, session_id, seq)
        self.invalid_sessions = 0  # RESUMEs answered INVALID_SESSION
        self.replayed: list[dict[str, Any]] = []  # dispatches sent again on a RESUME
        self.invalidate_resumes = False  # answer every RESUME with INVALID_SESSION (re-identify)
        self.replay_seen_messages = False  # a replay also repeats the MESSAGE_CREATEs already seen
        self.heartbeats = 0
        # Create Message's ``nonce`` with ``enforce_nonce``: "checked for uniqueness in the past
        # few minutes. If another message was created by the same author with the same nonce,
        # that message will be returned and no new message will be created" (Discord's docs;
        # "a few minutes" is not specified: here this many seconds, a test may shorten it).
        self.nonce_seconds = 180.0
        self._nonces: dict[tuple[str, str], tuple[int, float]] = {}  # (author, nonce) -> (message, when)
        self.gateway_compression: list[str | None] = []  # ``compress`` asked by each connection
        self._rules: list[_RateLimitRule] = []
        self._holds: list[tuple[str, re.Pattern[str], Hold]] = []
        self._connections: list[_Connection] = []
        self._detached: dict[str, _Connection] = {}  # sessions whose connection dropped, by id
        self._changed = asyncio.Event()
        self.guild_id = self.add_guild(guild_name, roles=roles)
        self.channel_id = self.add_channel(self.guild_id, "general")

    # -- ids and objects ------------------------------------------------------------------------
    def snowflake(self) -> int:
        """A Discord id for now (its timestamp is what discord.py's ``created_at`` reads)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)

    @staticmethod
    def _user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }

    def add_guild(self, name: str, *, roles: tuple[str, ...] = (), commands_scope: bool = True) -> int:
        """A guild the bot is in; ``commands_scope=False``: invited without ``applications.commands``
        (syncing commands there answers 403 Missing Access)."""
        guild_id = self.snowflake()
        everyone = {"id": str(guild_id), "name": "@everyone", "position": 0}
        role_list = [everyone] + [
            {"id": str(self.snowflake()), "name": role, "position": i + 1} for i, role in enumerate(roles)
        ]
        for role in role_list:
            role.update(
                color=0, hoist=False, permissions="0", managed=False, mentionable=False, flags=0, icon=None
            )
        self.guilds[guild_id] = {
            "id": str(guild_id),
            "name": name,
            "roles": role_list,
            "channel_ids": [],
            "members": {},
            "commands_scope": commands_scope,
        }
        self._add_member(guild_id, int(self.bot_user["id"]), ())
        return guild_id

    def add_channel(self, guild_id: int, name: str) -> int:
        channel_id = self.snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": CHANNEL_TEXT,
            "guild_id": str(guild_id),
            "name": name,
            "position": len(self.guilds[guild_id]["channel_ids"]),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        self.guilds[guild_id]["channel_ids"].append(channel_id)
        return channel_id

    def _role_ids(self, guild_id: int, names: tuple[str, ...] | list[str]) -> list[str]:
        by_name = {r["name"]: r["id"] for r in self.guilds[guild_id]["roles"]}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"unknown role(s) {missing}; the guild has {sorted(by_name)}")
        return [by_name[n] for n in names]

    def _add_member(self, guild_id: int, user_id: int, roles: tuple[str, ...] | list[str]) -> None:
        self.guilds[guild_id]["members"][user_id] = {
            "user": self.users[user_id],
            "roles": self._role_ids(guild_id, roles),
            "joined_at": _iso(),
            "nick": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
        }

    def add_user(
        self, name: str, *, roles: tuple[str, ...] | list[str] = (), guild_id: int | None = None
    ) -> int:
        """A human member of the guild (default: the one made at start) with these role names."""
        user_id = self.snowflake()
        self.users[user_id] = self._user(user_id, name)
        self._add_member(guild_id or self.guild_id, user_id, roles)
        return user_id

    def dm_channel(self, user_id: int) -> int:
        for channel in self.channels.values():
            if channel["type"] == CHANNEL_DM and channel["recipients"][0]["id"] == str(user_id):
                return int(channel["id"])
        channel_id = self.snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": CHANNEL_DM,
            "recipients": [self.users[user_id]],
            "last_message_id": None,
            "flags": 0,
        }
        return channel_id

    def _guild_payload(self, guild_id: int) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        channels = [self.channels[c] for c in guild["channel_ids"]]
        threads = [
            c
            for c in self.channels.values()
            if c["type"] == CHANNEL_PUBLIC_THREAD and c["guild_id"] == str(guild_id)
        ]
        return {
            "id": guild["id"],
            "name": guild["name"],
            "icon": None,
            "owner_id": self.bot_user["id"],
            "roles": guild["roles"],
            "channels": channels,
            "threads": threads,
            "members": list(guild["members"].values()),
            "member_count": len(guild["members"]),
            "large": False,
            "unavailable": False,
            "joined_at": _iso(),
            "features": [],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "afk_timeout": 300,
        }

    def _message_payload(
        self, channel_id: int, author: dict[str, Any], content: str, **extra: Any
    ) -> dict[str, Any]:
        message_id = extra.pop("id", None) or self.snowflake()
        channel = self.channels.get(channel_id, {})
        payload: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if channel.get("guild_id"):
            payload["guild_id"] = channel["guild_id"]
        payload.update(extra)
        self.messages[message_id] = payload
        self._record_version(payload)
        self._signal()
        return payload

    def _record_version(self, message: dict[str, Any]) -> None:
        """Keep what the message shows now (content, else its embeds' descriptions) as a version."""
        self.versions.setdefault(int(message["id"]), []).append((time.monotonic(), visible_text(message)))

    def versions_of(self, message_id: int) -> list[str]:
        """Every text the message showed, first to last (the post, then each accepted edit)."""
        return [text for _, text in self.versions.get(message_id, [])]

    # -- reading what happened ----------------------------------------------------------------
    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """Messages of a channel in order (webhook messages of interactions included)."""
        return [m for _, m in sorted(self.messages.items()) if m["channel_id"] == str(channel_id)]

    def public_messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """What everyone in the channel sees: :meth:`messages_in` without ephemeral messages."""
        return [m for m in self.messages_in(channel_id) if not int(m.get("flags", 0)) & FLAG_EPHEMERAL]

    def interaction_messages(self, interaction_id: int) -> list[str]:
        """The current text of an interaction's original response and follow-ups, in order
        (ephemeral ones included; deleted ones left out)."""
        interaction = self.interactions[interaction_id]
        ids = ([interaction.original_id] if interaction.original_id else []) + interaction.followup_ids
        return [self.messages[i]["content"] for i in ids if i in self.messages]

    def ephemeral_messages(self, interaction_id: int) -> list[str]:
        """The text of an interaction's messages that only its user sees (flag 64)."""
        interaction = self.interactions[interaction_id]
        ids = ([interaction.original_id] if interaction.original_id else []) + interaction.followup_ids
        return [
            self.messages[i]["content"]
            for i in ids
            if i in self.messages and int(self.messages[i].get("flags", 0)) & FLAG_EPHEMERAL
        ]

    def calls_to(self, method: str, pattern: str) -> list[RecordedCall]:
        regex = re.compile(pattern)
        return [c for c in self.calls if c.method == method and regex.search(c.path)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every request and gateway event)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                event = self._changed
                await event.wait()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- knobs --------------------------------------------------------------------------------
    def rate_limit(
        self,
        method: str,
        path_pattern: str,
        *,
        retry_after: float = 0.2,
        count: int = 1,
        via: bool = True,
        is_global: bool = False,
        after: int = 0,
        match: Callable[[Any], bool] | None = None,
        every: int = 0,
    ) -> None:
        """Answer ``count`` requests matching ``method`` and ``path_pattern`` (a regex searched in
        the path without ``/api/v10``) and, if given, whose JSON body satisfies ``match``, with
        HTTP 429, after letting ``after`` matches through.

        ``every=N``: only every Nth of the next ``count`` matching requests, the others answered
        normally. A real burst of 429s lasts a minute or so; counting requests makes that
        "minute" virtual, so a drill of it takes seconds.
        """
        self._rules.append(
            _RateLimitRule(
                method.upper(),
                re.compile(path_pattern),
                retry_after,
                count,
                via,
                is_global,
                after,
                match,
                every=every,
            )
        )

    def fail(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int = 503,
        count: int = 1,
        match: Callable[[Any], bool] | None = None,
    ) -> None:
        """Like :meth:`rate_limit`, but answer with HTTP ``status`` instead (a 5xx, or a refusal: 403)."""
        rule = _RateLimitRule(
            method.upper(), re.compile(path_pattern), 0.0, count, False, False, 0, match, status
        )
        self._rules.append(rule)

    async def drop_gateway(self, code: int = 4000) -> int:
        """Close every gateway connection from Discord's side, keeping their sessions for RESUME;
        returns how many were closed. discord.py resumes after 4000 (or a plain 1000 it did not
        ask for), and identifies again if RESUME is answered INVALID_SESSION."""
        dropped = list(self._connections)
        for connection in dropped:
            self._detach(connection)
            await connection.ws.close(code=code, message=b"fake Discord dropped the connection")
        self._signal()
        return len(dropped)

    def _detach(self, connection: _Connection) -> None:
        """The connection is gone; its session stays, collecting dispatches until a RESUME."""
        if connection in self._connections:
            self._connections.remove(connection)
            self._detached[connection.session_id] = connection

    def _receivers(self) -> list[_Connection]:
        """Every session a dispatch goes to: the connected ones, and those waiting for a RESUME."""
        return [*self._connections, *self._detached.values()]

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/ws", self._gateway)
        api = "/api/v10"
        routes = [
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("GET", "/gateway", self._gateway_url),
            ("GET", "/gateway/bot", self._gateway_bot),
            ("PUT", "/applications/{app}/commands", self._sync_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._sync_commands),
            ("POST", "/interactions/{iid}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("GET", "/webhooks/{app}/{token}/messages/{mid}", self._webhook_message),
            ("PATCH", "/webhooks/{app}/{token}/messages/{mid}", self._webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{mid}", self._webhook_message),
            ("GET", "/users/@me/guilds", self._my_guilds),
            ("GET", "/guilds/{gid}/channels", self._guild_channels),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/channels/{cid}", self._channel),
            ("POST", "/channels/{cid}/messages", self._create_message),
            ("GET", "/channels/{cid}/messages", self._list_messages),
            ("GET", "/channels/{cid}/messages/{mid}", self._channel_message),
            ("PATCH", "/channels/{cid}/messages/{mid}", self._channel_message),
            ("DELETE", "/channels/{cid}/messages/{mid}", self._channel_message),
            ("POST", "/channels/{cid}/typing", self._typing),
            ("POST", "/channels/{cid}/messages/{mid}/threads", self._create_thread),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        await self._listen(app, host, port, shutdown_timeout=1.0)

    async def stop(self) -> None:
        for _, _, held in self._holds:
            held.dropped = True  # its caller is gone (killed): what was not applied never is
            held.release()
        for connection in list(self._connections):
            await connection.ws.close(code=1001)
        await self._close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    # -- REST plumbing ------------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        arrived = time.monotonic()
        if request.path == "/ws":
            response: web.StreamResponse = await handler(request)
            return response
        path = request.path.removeprefix("/api/v10")
        body: Any = None
        files: list[FakeFile] = []
        if request.can_read_body:
            body, files = await _read_body(request)
        request[_FILES] = files
        refused = self._limited(request.method, path, body) or self._unauthorized(request, path)
        verdict = self.limiter.check(request.method, path) if self.limiter and refused is None else None
        if verdict is not None and verdict.limited:
            refused = _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": round(verdict.retry_after, 3),
                    "global": verdict.is_global,
                },
                status=429,
                headers=verdict.headers,
            )
        held = self._take_hold(request.method, path, body) if refused is None else None
        if held is not None and not held.apply:
            held.reached.set()
            await held.released.wait()
            if held.dropped:
                return self._error(503, 0, "held, and its caller is gone")
        if refused is None:
            request[_BODY] = body
            response = await handler(request)
            if verdict is not None:
                response.headers.update(verdict.headers)
        else:
            response = refused
        if held is not None and held.apply:
            self.calls.append(
                RecordedCall(request.method, path, dict(request.query), body, response.status, arrived)
            )
            self._signal()
            held.reached.set()
            await held.released.wait()
            return response
        self.calls.append(
            RecordedCall(request.method, path, dict(request.query), body, response.status, arrived)
        )
        self._signal()
        return response

    def hold(
        self, method: str, pattern: str, *, apply: bool = False, match: Callable[[Any], bool] | None = None
    ) -> Hold:
        """Hold the next ``method`` call to a path matching ``pattern`` (a regex over the path
        after ``/api/v10``) whose JSON body satisfies ``match``: with ``apply`` it takes effect
        first (Discord applied it, the response is not back yet), without it nothing happens
        yet; either way it is answered only once released. Await ``hold(...).reached`` and
        SIGKILL the caller there to drill that crash window."""
        held = Hold(method, apply, match)
        self._holds.append((method, re.compile(pattern), held))
        return held

    def _take_hold(self, method: str, path: str, body: Any) -> Hold | None:
        for wanted, pattern, held in self._holds:
            if wanted != method or held.taken or not pattern.search(path):
                continue
            if held.match is None or held.match(body):
                held.taken, held.args = True, body
                return held
        return None

    def _limited(self, method: str, path: str, body: Any) -> web.Response | None:
        for rule in self._rules:
            if rule.applies(method, path, body):
                if rule.status != 429:
                    return self._error(rule.status, 0, f"{rule.status}: Server Error")
                headers = {
                    "Retry-After": str(max(1, int(rule.retry_after + 0.999))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                    "X-RateLimit-Bucket": "fake-" + re.sub(r"\W", "", rule.pattern.pattern)[:16],
                    "X-RateLimit-Scope": "user",
                }
                if rule.is_global:
                    headers["X-RateLimit-Global"] = "true"
                    headers["X-RateLimit-Scope"] = "global"
                if rule.via:
                    headers["Via"] = "1.1 google"
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": rule.retry_after,
                    "global": rule.is_global,
                }
                return _json(body, status=429, headers=headers)
        return None

    def _unauthorized(self, request: web.Request, path: str) -> web.Response | None:
        if path.startswith(("/interactions/", "/webhooks/")):
            return None  # authorised by the interaction token in the path
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return None

    @staticmethod
    def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> web.Response:
        body: dict[str, Any] = {"message": message, "code": code}
        if errors:
            body["errors"] = errors
        return _json(body, status=status)

    def _too_long(self, content: Any) -> web.Response | None:
        if isinstance(content, str) and len(content) > MESSAGE_LIMIT:
            return self._error(
                400,
                50035,
                "Invalid Form Body",
                {
                    "content": {
                        "_errors": [
                            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                        ]
                    }
                },
            )
        return None

    # -- REST routes ----------------------------------------------------------------------------
    async def _me(self, request: web.Request) -> web.Response:
        return _json({**self.bot_user, "verified": True, "mfa_enabled": False, "flags": 0})

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_user["username"],
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
                "owner": self._user(self.snowflake(), "owner"),
                "team": None,
                "bot": self.bot_user,
                "interactions_endpoint_url": None,
            }
        )

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _sync_commands(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != str(self.application_id):
            return self._error(403, 50001, "Missing Access")
        guild = request.match_info.get("guild")
        if guild is not None and (
            int(guild) not in self.guilds or not self.guilds[int(guild)]["commands_scope"]
        ):
            return self._error(403, 50001, "Missing Access")
        stored = []
        for definition in _body(request) or []:
            command = {
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "type": 1,
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "options": [],
                **definition,
            }
            if guild is not None:
                command["guild_id"] = guild
            stored.append(command)
        self.commands[guild or "global"] = stored
        return _json(stored)

    def _interaction_for(self, token: str) -> FakeInteraction | None:
        return next((i for i in self.interactions.values() if i.token == token), None)

    def _webhook_auth(self, request: web.Request) -> FakeInteraction | web.Response:
        interaction = self._interaction_for(request.match_info["token"])
        if interaction is None or request.match_info.get("app", str(self.application_id)) != str(
            self.application_id
        ):
            return self._error(404, 10015, "Unknown Webhook")
        if time.time() > interaction.created + self.token_lifetime:
            return self._error(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(int(request.match_info["iid"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            return self._error(404, 10062, "Unknown interaction")
        if interaction.callbacks:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        if time.time() > interaction.created + 3.0:
            return self._error(404, 10062, "Unknown interaction")
        body = _body(request) or {}
        interaction.callbacks.append(body)
        kind = body.get("type")
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind in (4, 5):
            if (problem := self._too_long(data.get("content"))) is not None:
                interaction.callbacks.pop()
                return problem
            flags = int(data.get("flags", 0)) | (FLAG_LOADING if kind == 5 else 0)
            message = self._message_payload(
                interaction.channel_id,
                self.bot_user,
                _trimmed(data.get("content")),
                flags=flags,
                webhook_id=str(self.application_id),
                application_id=str(self.application_id),
                **self._answering(interaction),
            )
            interaction.original_id = int(message["id"])
        elif kind in (6, 7):  # DEFERRED_UPDATE_MESSAGE / UPDATE_MESSAGE: components only
            clicked = self.messages.get(int((interaction.payload.get("message") or {}).get("id", 0)))
            if interaction.payload["type"] != 3 or clicked is None:
                interaction.callbacks.pop()
                return self._error(400, 40004, "Interaction callback type only valid for components")
            if kind == 7:
                self._apply_edit(clicked, data)
        elif kind != 8:
            interaction.callbacks.pop()
            return self._error(
                400, 50035, "Invalid Form Body", {"type": "Value is not a valid callback type"}
            )
        self._signal()
        if "with_response" not in request.query:
            return web.Response(status=204)
        response: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.payload["type"],
                "response_message_id": message["id"] if message else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags", 0)) & 64),
            }
        }
        if message is not None:
            response["resource"] = {"type": kind, "message": message}
        return _json(response)

    def _answering(self, interaction: FakeInteraction, *, followup: bool = False) -> dict[str, Any]:
        """The fields Discord gives a message sent in response to an interaction (its original
        response or a follow-up), on every read of it: ``interaction_metadata`` (the
        interaction's id, type, user, authorizing owners; a follow-up also names the original
        response) and the deprecated ``interaction`` (id, type, command name, user)."""
        payload = interaction.payload
        user = self.users[interaction.user_id]
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": payload["type"],
            "user": user,
            "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
        }
        if followup and interaction.original_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_id)
        legacy = {
            "id": str(interaction.id),
            "type": payload["type"],
            "name": (payload.get("data") or {}).get("name", ""),
            "user": user,
        }
        return {"interaction_metadata": metadata, "interaction": legacy}

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._webhook_auth(request)
        if isinstance(interaction, web.Response):
            return interaction
        if not interaction.callbacks:
            return self._error(404, 10015, "Unknown Webhook")
        body = _body(request) or {}
        if (problem := self._refusal(body)) is not None:
            return problem
        original = self.messages.get(interaction.original_id or 0)
        if original is not None and int(original.get("flags", 0)) & FLAG_LOADING:
            # Discord's backwards compatibility: the first follow-up after a deferral resolves the
            # loading response (an edit; its ephemeral state cannot change, so flags are ignored).
            original["content"] = _trimmed(body.get("content"))
            original["components"] = body.get("components") or []
            original["flags"] = int(original["flags"]) & ~FLAG_LOADING
            original["edited_timestamp"] = _iso()
            self._record_version(original)
            if request.query.get("wait", "false").lower() in ("true", "1"):
                return _json(original)
            return web.Response(status=204)
        files = request[_FILES]
        message = self._message_payload(
            interaction.channel_id,
            self.bot_user,
            _trimmed(body.get("content")),
            flags=int(body.get("flags", 0)),
            webhook_id=str(self.application_id),
            application_id=str(self.application_id),
            components=body.get("components") or [],
            attachments=self._attachments(body, files),
            **self._answering(interaction, followup=True),
        )
        if files:
            self.files[int(message["id"])] = list(files)
        interaction.followup_ids.append(int(message["id"]))
        if request.query.get("wait", "false").lower() in ("true", "1"):
            return _json(message)
        return web.Response(status=204)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_auth(request)
        if isinstance(interaction, web.Response):
            return interaction
        mid = request.match_info["mid"]
        message_id = interaction.original_id if mid == "@original" else int(mid)
        if message_id is None or message_id not in self.messages:
            return self._error(404, 10008, "Unknown Message")
        if mid != "@original" and message_id not in interaction.followup_ids:
            return self._error(404, 10008, "Unknown Message")
        message = self.messages[message_id]
        if request.method == "DELETE":
            self.deleted_messages[message_id] = self.messages.pop(message_id)
            if mid == "@original":
                interaction.original_deleted = True
            self._signal()
            return web.Response(status=204)
        if request.method == "PATCH":
            body = _body(request) or {}
            if (problem := self._refusal(body)) is not None:
                return problem
            self._apply_edit(message, body)
            message["flags"] = int(message.get("flags", 0)) & ~FLAG_LOADING
        return _json(message)

    def _refusal(self, body: Mapping[str, Any]) -> web.Response | None:
        """Discord's 400 for a message body it refuses: content too long, bad components.
        (Compared with None: an aiohttp response is a mapping, falsy while empty.)"""
        problem = self._too_long(body.get("content"))
        return problem if problem is not None else self._bad_components(body)

    def _apply_edit(self, message: dict[str, Any], body: Mapping[str, Any]) -> None:
        """A PATCH's content and components (a key left out keeps what the message had)."""
        if "content" in body:
            message["content"] = _trimmed(body["content"])
        if "components" in body:
            message["components"] = body["components"] or []
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        message["edited_timestamp"] = _iso()
        self._record_version(message)
        self._signal()

    def _bad_components(self, body: Mapping[str, Any]) -> web.Response | None:
        """Discord's 400 for components that are not action rows of at most 5 buttons with a
        ``custom_id`` of at most 100 characters (the shapes botkit sends)."""
        rows = body.get("components")
        if rows is None:
            return None
        for row in rows:
            children = row.get("components") or []
            if row.get("type") != COMPONENT_ACTION_ROW or not 1 <= len(children) <= 5:
                return self._error(400, 50035, "Invalid Form Body", {"components": "BASE_TYPE_BAD_LENGTH"})
            for child in children:
                custom_id = str(child.get("custom_id") or "")
                if (
                    child.get("type") == COMPONENT_BUTTON
                    and not 1 <= len(custom_id) <= 100
                    and not child.get("url")
                ):
                    return self._error(400, 50035, "Invalid Form Body", {"custom_id": "BASE_TYPE_BAD_LENGTH"})
        return None

    async def _my_guilds(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "id": g["id"],
                    "name": g["name"],
                    "icon": None,
                    "owner": False,
                    "permissions": "0",
                    "features": [],
                }
                for g in self.guilds.values()
            ]
        )

    async def _guild_channels(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(int(request.match_info["gid"]))
        if guild is None:
            return self._error(404, 10004, "Unknown Guild")
        return _json([self.channels[c] for c in guild["channel_ids"]])

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = _body(request)
        recipient = int((body or {}).get("recipient_id") or 0)
        if recipient not in self.users:
            return self._error(400, 50033, "Invalid Recipients")
        return _json(self.channels[self.dm_channel(recipient)])

    def role_id(self, name: str, guild_id: int | None = None) -> str:
        """The id of a role of the guild (default: the one made at start) by its name."""
        return self._role_ids(guild_id or self.guild_id, [name])[0]

    async def rename_channel(self, channel_id: int, name: str) -> None:
        """Rename a guild channel, as an admin would, and dispatch CHANNEL_UPDATE."""
        channel = self.channels[channel_id]
        channel["name"] = name
        await self.dispatch("CHANNEL_UPDATE", dict(channel), intent=INTENT_GUILDS)

    async def _channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(int(request.match_info["cid"]))
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        return _json(channel)

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["cid"])
        if channel_id not in self.channels:
            return self._error(404, 10003, "Unknown Channel")
        body = _body(request) or {}
        content = _trimmed(body.get("content"))
        if (problem := self._too_long(content)) is not None:
            return problem
        files = request[_FILES]
        if not content and not body.get("embeds") and not files:
            return self._error(400, 50006, "Cannot send an empty message")
        if (problem := self._bad_components(body)) is not None:
            return problem
        if (earlier := self._created_with_nonce(body)) is not None:
            return _json(earlier)
        extra: dict[str, Any] = {"components": body.get("components") or []}
        if body.get("embeds"):
            extra["embeds"] = body["embeds"]
        if files:
            extra["attachments"] = self._attachments(body, files)
        if body.get("message_reference"):
            reference, problem = self._reply_reference(channel_id, body["message_reference"])
            if problem is not None:
                return problem
            if reference is not None:
                extra["message_reference"] = reference
                extra["type"] = 19  # REPLY
        message = self._message_payload(channel_id, self.bot_user, content, **extra)
        if files:
            self.files[int(message["id"])] = list(files)
        nonce = body.get("nonce")
        if nonce is not None:  # returned on create and in MESSAGE_CREATE, never on reads
            self._nonces[(self.bot_user["id"], str(nonce))] = (int(message["id"]), time.monotonic())
            message = {**message, "nonce": nonce}
        await self._dispatch_message(message)
        return _json(message)

    def _created_with_nonce(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The message the bot created with this ``nonce`` within :attr:`nonce_seconds`, where
        the request enforces it (and that message still exists), as Discord hands it back."""
        nonce = body.get("nonce")
        if nonce is None or not body.get("enforce_nonce"):
            return None
        earlier = self._nonces.get((self.bot_user["id"], str(nonce)))
        if earlier is None or time.monotonic() - earlier[1] > self.nonce_seconds:
            return None
        message = self.messages.get(earlier[0])
        return None if message is None else {**message, "nonce": nonce}

    def _reply_reference(
        self, channel_id: int, sent: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        """A reply's ``message_reference`` as Discord stores it (its snowflakes as strings), or
        Discord's refusal: the replied-to message must be in the same channel (400, form error
        ``REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL``, so a reply in a thread cannot reference the
        parent channel's message the thread was started from); an unknown one is refused
        (``REPLIES_UNKNOWN_MESSAGE``) unless ``fail_if_not_exists`` is false, which sends a
        normal message without a reference."""

        def refusal(code: str, text: str) -> web.Response:
            errors = {"message_reference": {"_errors": [{"code": code, "message": text}]}}
            return self._error(400, 50035, "Invalid Form Body", errors)

        target = self.messages.get(int(sent.get("message_id") or 0))
        named = sent.get("channel_id")
        if (named is not None and str(named) != str(channel_id)) or (
            target is not None and target["channel_id"] != str(channel_id)
        ):
            return None, refusal(
                "REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL", "Cannot reply to a message in a different channel"
            )
        if target is None:
            if sent.get("fail_if_not_exists", True):
                return None, refusal("REPLIES_UNKNOWN_MESSAGE", "Unknown message")
            return None, None
        reference = {k: str(v) if k.endswith("_id") and v is not None else v for k, v in sent.items()}
        reference.setdefault("channel_id", str(channel_id))
        return reference, None

    async def _list_messages(self, request: web.Request) -> web.Response:
        """Get Channel Messages as Discord answers it: ``limit`` (1-100, default 50) messages,
        newest first; with ``after`` the oldest ones after that id, with ``before`` the newest
        ones before it, else the newest. Ephemeral messages are not listed."""
        channel_id = int(request.match_info["cid"])
        if channel_id not in self.channels:
            return self._error(404, 10003, "Unknown Channel")
        try:
            limit = int(request.query.get("limit", "50"))
            after, before = (
                int(request.query[k]) if k in request.query else None for k in ("after", "before")
            )
        except ValueError:
            return self._error(400, 50035, "Invalid Form Body")
        if not 1 <= limit <= 100:
            return self._error(400, 50035, "Invalid Form Body")
        ids = sorted(
            mid
            for mid, m in self.messages.items()
            if m["channel_id"] == str(channel_id) and not int(m.get("flags", 0)) & FLAG_EPHEMERAL
        )
        if after is not None:
            chosen = [mid for mid in ids if mid > after][:limit]
        else:
            chosen = [mid for mid in ids if before is None or mid < before][-limit:]
        return _json([self.messages[mid] for mid in reversed(chosen)])

    def _attachments(self, body: Mapping[str, Any], files: list[FakeFile]) -> list[dict[str, Any]]:
        """Discord's attachment objects for ``files`` (``description`` from ``payload_json``)."""
        described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        out = []
        for index, part in enumerate(files):
            attachment_id = self.snowflake()
            meta = described.get(str(index), {})
            out.append(
                {
                    "id": str(attachment_id),
                    "filename": part.filename,
                    "size": len(part.data),
                    "content_type": part.content_type,
                    "description": meta.get("description"),
                    "url": f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{part.filename}",
                    "proxy_url": f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{part.filename}",
                }
            )
        return out

    async def _channel_message(self, request: web.Request) -> web.Response:
        channel_id, message_id = int(request.match_info["cid"]), int(request.match_info["mid"])
        message = self.messages.get(message_id)
        if message is None or message["channel_id"] != str(channel_id):
            return self._error(404, 10008, "Unknown Message")
        if int(message.get("flags", 0)) & FLAG_EPHEMERAL:
            # Discord: an ephemeral message exists only for its interaction's token, not in the channel
            return self._error(404, 10008, "Unknown Message")
        if request.method == "DELETE":
            if message["author"]["id"] != self.bot_user["id"]:
                return self._error(403, 50013, "Missing Permissions")
            self.deleted_messages[message_id] = self.messages.pop(message_id)
            self._signal()
            return web.Response(status=204)
        if request.method == "PATCH":
            if message["author"]["id"] != self.bot_user["id"]:
                return self._error(403, 50005, "Cannot edit a message authored by another user")
            body = _body(request) or {}
            if (problem := self._refusal(body)) is not None:
                return problem
            self._apply_edit(message, body)
        return _json(message)

    async def _typing(self, request: web.Request) -> web.Response:
        """``POST /channels/{cid}/typing``: the "botkit is typing…" indicator (204)."""
        channel_id = int(request.match_info["cid"])
        if channel_id not in self.channels:
            return self._error(404, 10003, "Unknown Channel")
        self.typing.append((channel_id, time.monotonic()))
        return web.Response(status=204)

    async def _create_thread(self, request: web.Request) -> web.Response:
        channel_id, message_id = int(request.match_info["cid"]), int(request.match_info["mid"])
        parent = self.channels.get(channel_id)
        message = self.messages.get(message_id)
        if parent is None or message is None or message["channel_id"] != str(channel_id):
            return self._error(404, 10008, "Unknown Message")
        if channel_id in self.no_thread_permission:
            return self._error(403, 50013, "Missing Permissions")
        if channel_id in self.too_many_threads:
            return self._error(400, 160006, "Maximum number of active threads reached")
        if message_id in self.channels:
            return self._error(400, 160004, "A thread has already been created for this message")
        body = _body(request) or {}
        thread = await self._start_thread(
            message,
            str(body.get("name", "")),
            int(body.get("auto_archive_duration", 1440)),
            self.bot_user["id"],
        )
        return _json(thread, status=201)

    async def _start_thread(
        self, message: dict[str, Any], name: str, archive: int, owner_id: str
    ) -> dict[str, Any]:
        message_id = int(message["id"])
        parent = self.channels[int(message["channel_id"])]
        thread = {
            "id": str(message_id),  # Discord gives a thread started from a message the message's id
            "type": CHANNEL_PUBLIC_THREAD,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": owner_id,
            "name": name[:100],
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive,
                "archive_timestamp": _iso(),
                "locked": False,
            },
        }
        self.channels[message_id] = thread
        message["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    # -- gateway --------------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.gateway_compression.append(request.query.get("compress"))
        compressor = zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None
        connection = _Connection(ws, compressor, session_id=secrets.token_hex(16))
        await connection.send(
            {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
        )
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._gateway_op(connection, json.loads(frame.data))
                elif frame.type == WSMsgType.BINARY:
                    await self._gateway_op(connection, json.loads(zlib.decompress(frame.data)))
        finally:
            self._detach(connection)
            self._signal()
        return ws

    async def _gateway_op(self, connection: _Connection, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data: Any = payload.get("d")
        if op == 1:
            self.heartbeats += 1
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            self.identifies.append(data)
            if data.get("token") != self.token:
                await connection.ws.close(code=4004, message=b"Authentication failed.")
                return
            connection.intents = int(data.get("intents", 0))
            self._connections.append(connection)
            ready = {
                "v": 10,
                "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "flags": 0},
                "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
                "session_id": connection.session_id,
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": 1 << 19},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "user_settings": {},
                "shard": [0, 1],
            }
            await self._send_dispatch(connection, "READY", ready)
            for guild_id in self.guilds:
                await self._send_dispatch(connection, "GUILD_CREATE", self._guild_payload(guild_id))
        elif op == 6:
            await self._resume(connection, data)
        self._signal()

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        """RESUME: take over the dropped session and replay what it missed, or INVALID_SESSION."""
        self.resumes.append(data)
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = self._detached.pop(str(data.get("session_id")), None)
        if session is None or self.invalidate_resumes:
            self.invalid_sessions += 1
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return
        connection.session_id, connection.intents = session.session_id, session.intents
        connection.sequence, connection.sent = session.sequence, session.sent
        self._connections.append(connection)
        seen = int(data.get("seq") or 0)
        for payload in list(session.sent):
            if int(payload["s"]) > seen or (self.replay_seen_messages and payload["t"] == "MESSAGE_CREATE"):
                self.replayed.append(payload)
                await connection.send(payload)
        await self._send_dispatch(connection, "RESUMED", {})

    async def _send_dispatch(self, connection: _Connection, event: str, data: dict[str, Any]) -> None:
        """Number the dispatch in its session and send it (kept for a RESUME if not connected)."""
        connection.sequence += 1
        payload = {"op": 0, "t": event, "s": connection.sequence, "d": data}
        connection.sent.append(payload)
        if not connection.ws.closed and connection in self._connections:
            await connection.send(payload)

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int = 0) -> None:
        """Send a DISPATCH to every identified connection whose intents include ``intent``."""
        for connection in self._receivers():
            if intent and not (connection.intents or 0) & intent:
                continue
            await self._send_dispatch(connection, event, data)
        self._signal()

    async def wait_until_connected(self, timeout: float = 10.0) -> None:
        """Wait until a client has identified (READY and GUILD_CREATE were sent)."""
        await self.wait_for(lambda: bool(self._connections), timeout)

    async def _dispatch_message(self, message: dict[str, Any]) -> None:
        channel = self.channels[int(message["channel_id"])]
        is_dm = channel["type"] == CHANNEL_DM
        intent = INTENT_DIRECT_MESSAGES if is_dm else INTENT_GUILD_MESSAGES
        for connection in self._receivers():
            intents = connection.intents or 0
            if not intents & intent:
                continue
            payload = dict(message)
            mentions_bot = any(u["id"] == self.bot_user["id"] for u in message.get("mentions", []))
            own = message["author"]["id"] == self.bot_user["id"]
            if not (intents & INTENT_MESSAGE_CONTENT or is_dm or mentions_bot or own):
                payload.update(content="", embeds=[], attachments=[], components=[])
            await self._send_dispatch(connection, "MESSAGE_CREATE", payload)
        self._signal()

    # -- what users do --------------------------------------------------------------------------
    async def user_message(
        self,
        user_id: int,
        channel_id: int,
        content: str,
        *,
        dispatch: bool = True,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user posts ``content`` (use ``fake.mention`` for ``<@bot>``); MESSAGE_CREATE follows
        (``dispatch=False``: not yet, see :meth:`redeliver`). ``reply_to``: a Discord reply (with
        ping) to that message, which lists its author in ``mentions`` without ``<@id>`` in the text."""
        channel = self.channels[channel_id]
        mentioned = [self.users[int(m)] for m in re.findall(r"<@!?(\d+)>", content) if int(m) in self.users]
        extra: dict[str, Any] = {"mentions": mentioned}
        if reply_to is not None:
            author = reply_to["author"]
            if all(m["id"] != author["id"] for m in mentioned):
                mentioned.append(author)
            extra["type"] = 19  # REPLY
            extra["message_reference"] = {"message_id": reply_to["id"], "channel_id": str(channel_id)}
        guild_id = channel.get("guild_id")
        if guild_id:
            member = dict(self.guilds[int(guild_id)]["members"][user_id])
            member.pop("user")
            extra["member"] = member
        message = self._message_payload(channel_id, self.users[user_id], content, **extra)
        if dispatch:
            await self._dispatch_message(message)
        return message

    def bot_message(self, channel_id: int, content: str, **extra: Any) -> dict[str, Any]:
        """A message the bot posted earlier (say, by a process that has since crashed), stored
        without a gateway event; ``extra`` overrides payload fields (``flags``, ``webhook_id``...)."""
        if channel_id not in self.channels:
            raise ValueError(f"unknown channel {channel_id}")
        return self._message_payload(channel_id, self.bot_user, content, **extra)

    async def start_thread(self, message_id: int, name: str) -> int:
        """The message's author starts a thread from it by hand (THREAD_CREATE follows)."""
        message = self.messages[message_id]
        if message_id in self.channels:
            raise ValueError(f"message {message_id} already has a thread")
        await self._start_thread(message, name, 1440, message["author"]["id"])
        return message_id

    async def redeliver(self, message: dict[str, Any]) -> None:
        """Dispatch MESSAGE_CREATE for ``message`` again (a gateway replay, or a second process)."""
        current = self.messages[int(message["id"])]
        await self._dispatch_message({k: v for k, v in current.items() if k != "thread"})

    @property
    def mention(self) -> str:
        return f"<@{self.bot_user['id']}>"

    def _command_id(self, guild_id: int | None, name: str) -> str:
        for scope in (str(guild_id), "global"):
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return str(command["id"])
        raise LookupError(f"command {name!r} was not synced (synced: {self.commands})")

    def _interaction(
        self,
        kind: int,
        user_id: int,
        name: str,
        options: Mapping[str, str],
        *,
        channel_id: int | None,
        subcommand: str | None,
        focused: str | None,
    ) -> FakeInteraction:
        channel_id = channel_id or self.channel_id
        channel = self.channels[channel_id]
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        option_list: list[dict[str, Any]] = [
            {"name": k, "type": OPTION_STRING, "value": v, **({"focused": True} if k == focused else {})}
            for k, v in options.items()
        ]
        if subcommand is not None:
            option_list = [{"name": subcommand, "type": OPTION_SUBCOMMAND, "options": option_list}]
        data: dict[str, Any] = {
            "id": self._command_id(guild_id, name),
            "name": name,
            "type": 1,
            "options": option_list,
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return self._new_interaction(kind, user_id, channel_id, data)

    def _new_interaction(
        self, kind: int, user_id: int, channel_id: int, data: dict[str, Any], **extra: Any
    ) -> FakeInteraction:
        """An interaction of ``kind`` by ``user_id`` in ``channel_id``, as INTERACTION_CREATE carries it."""
        channel = self.channels[channel_id]
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        interaction_id = self.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel_id),
            "channel": channel,
            "token": token,
            "version": 1,
            "app_permissions": "562949953421311",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id or 0)},
            "context": 0 if guild_id else 1,
            "attachment_size_limit": 10 * 1024 * 1024,
            **extra,
        }
        if guild_id is not None:
            member = {**self.guilds[guild_id]["members"][user_id], "permissions": "1071698660929"}
            payload.update(guild_id=str(guild_id), guild_locale="en-US", member=member)
        else:
            payload["user"] = self.users[user_id]
        interaction = FakeInteraction(
            interaction_id, token, guild_id, channel_id, user_id, time.time(), payload
        )
        self.interactions[interaction_id] = interaction
        return interaction

    async def slash_command(
        self,
        user_id: int,
        name: str,
        options: Mapping[str, str] | None = None,
        *,
        channel_id: int | None = None,
        subcommand: str | None = None,
    ) -> FakeInteraction:
        """A user runs ``/name [subcommand] option:value ...``; INTERACTION_CREATE follows."""
        interaction = self._interaction(
            2, user_id, name, options or {}, channel_id=channel_id, subcommand=subcommand, focused=None
        )
        await self.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction

    async def click_button(
        self, user_id: int, message_id: int, custom_id: str, *, timeout: float = 5.0
    ) -> FakeInteraction:
        """``user_id`` clicks the button ``custom_id`` on a message: INTERACTION_CREATE with a
        component interaction (type 3, ``data.component_type`` 2) carrying the whole message,
        as Discord sends it. Waits for the bot's callback (``interaction.callbacks``). Raises if
        the message shows no such button."""
        message = self.messages.get(message_id)
        if message is None:
            raise LookupError(f"message {message_id} does not exist")
        if custom_id not in [b.get("custom_id") for b in self.buttons(message_id)]:
            shown = [b.get("custom_id") for b in self.buttons(message_id)]
            raise LookupError(f"message {message_id} has no button {custom_id!r} (it shows {shown})")
        data = {"custom_id": custom_id, "component_type": COMPONENT_BUTTON}
        interaction = self._new_interaction(
            3, user_id, int(message["channel_id"]), data, message=json.loads(json.dumps(message))
        )
        await self.dispatch("INTERACTION_CREATE", interaction.payload)
        await self.wait_for(lambda: bool(interaction.callbacks), timeout)
        return interaction

    def buttons(self, message_id: int) -> list[dict[str, Any]]:
        """The buttons a message shows now (in its action rows), in order."""
        message = self.messages.get(message_id) or {}
        return [
            component
            for row in message.get("components") or []
            for component in row.get("components", [])
            if component.get("type") == COMPONENT_BUTTON
        ]

    async def autocomplete(
        self,
        user_id: int,
        name: str,
        focused: str,
        options: Mapping[str, str],
        *,
        channel_id: int | None = None,
        subcommand: str | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """A user types in option ``focused``; returns the choices the bot answered with."""
        interaction = self._interaction(
            4, user_id, name, options, channel_id=channel_id, subcommand=subcommand, focused=focused
        )
        await self.dispatch("INTERACTION_CREATE", interaction.payload)
        await self.wait_for(lambda: bool(interaction.callbacks), timeout)
        callback = interaction.callbacks[0]
        if callback.get("type") != 8:
            raise AssertionError(f"expected an autocomplete result (type 8), got {callback}")
        choices: list[dict[str, Any]] = callback["data"]["choices"]
        return choices


def _trimmed(content: Any) -> str:
    """A message's content as Discord keeps it: leading and trailing whitespace stripped on
    create and edit. Discord does not document this; bot developers report it ("discord strips
    all trailing whitespace": strinking/futaba#273), and Discord refuses a content of only a
    newline as empty (code 50006: NITKC-DEV/Kisarazu-Multi-Manager#32). Python's
    ``str.strip`` stands in for Discord's own idea of whitespace."""
    return str(content or "").strip()


def visible_text(message: Mapping[str, Any]) -> str:
    """What a message shows as text: its content, else its embeds' descriptions (llmcord's form)."""
    content = str(message.get("content") or "")
    if content:
        return content
    return "\n".join(str(e.get("description") or "") for e in message.get("embeds") or [])


async def _read_body(request: web.Request) -> tuple[Any, list[FakeFile]]:
    """The JSON payload and, for a multipart request, its ``files[n]`` parts."""
    if request.content_type == "application/json":
        return await request.json(), []
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        raw = form.get("payload_json")
        files = [
            FakeFile(name, part.filename, part.content_type, part.file.read())
            for name, part in form.items()
            if name.startswith("files[") and isinstance(part, web.FileField)
        ]
        return (json.loads(str(raw)) if raw is not None else None), files
    text = await request.text()
    return (json.loads(text) if text else None), []
