"""Who may use a persona here: the access rules of the persona file, the configuration and the
channel binding, decided for one message.

How the rules combine (README "Access"): every ``channels`` list that applies must contain the
channel; anyone listed in any ``deny`` is refused; and if any ``allow`` lists someone, the asker
must be in one of them (a persona without any ``allow`` is open). The rules that apply to a
message are the persona file's ``access:``, ``[access.personas.NAME]`` and the binding of the
channel it was asked in, if any.

Fail closed: whatever must be looked up (a Slack user group's members, a channel name never seen)
and cannot be read in ``[access] lookup_timeout`` refuses the request, and the reason is logged
with who, where, which persona and which kind of rule, never a token. Group members are cached
for ``[access] group_cache_seconds`` and then read again.

The console's operator (``[console] operator``) is the person running botkit on their own
machine, with its configuration and database in reach: rules do not apply to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from botkit.access.directory import Directory, DirectoryError
from botkit.access.rules import Binding, ChannelRef, Rule, Who, normalise
from botkit.events import IncomingMessage

log = logging.getLogger("botkit.access")


class AccessConfigError(Exception):
    """A rule names something the platform does not have (a channel name); says which and where."""


class AccessRefused(Exception):
    """The asker may not use the persona here; ``rule`` is the kind (for the audit, never shown)."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Applied:
    """A rule that applies to a message, and where it was written (for logs and errors)."""

    origin: str
    rule: Rule


class _Unavailable(Exception):
    """A lookup a rule needs could not be made."""


class AccessChecker:
    """The decisions of one running botkit; adapters attach their directories before serving."""

    def __init__(
        self,
        bindings: Mapping[str, str | Binding],
        personas: Mapping[str, Rule],
        *,
        group_cache_seconds: float = 300.0,
        lookup_timeout: float = 5.0,
        extra_channels: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._bindings_source = bindings  # read again when it changes (settings edited in place)
        self._bindings_seen: dict[str, str | Binding] = {}
        self._bindings: list[tuple[str, ChannelRef, Binding]] = []
        self.personas = dict(personas)
        self.group_cache_seconds = group_cache_seconds
        self.lookup_timeout = lookup_timeout
        self.extra_channels = {k: list(v) for k, v in (extra_channels or {}).items()}
        self.directories: dict[str, Directory] = {}
        self._names: dict[str, dict[str, str]] = {}  # platform -> name -> id, as last read
        self._pins: dict[tuple[str, str], str] = {}  # (platform, name) -> the id it first named
        self._names_read: dict[str, float] = {}
        self._groups: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    @property
    def bindings(self) -> list[tuple[str, ChannelRef, Binding]]:
        """The configured bindings, parsed: (key as written, its channel, the binding)."""
        if self._bindings_seen != self._bindings_source:
            self._bindings_seen = dict(self._bindings_source)
            self._bindings = [
                (key, ChannelRef.parse(key), value if isinstance(value, Binding) else Binding(persona=value))
                for key, value in self._bindings_seen.items()
            ]
        return self._bindings

    # -- channel names ------------------------------------------------------------------------
    def configured_channels(self) -> list[tuple[str, ChannelRef]]:
        """Every channel the configuration names, with the key it is written under."""
        found = [(f"[personas.bindings] {key!r}", ref) for key, ref, _ in self.bindings]
        for key, _, binding in self.bindings:
            found += [
                (f"[personas.bindings] {key!r} channels", ChannelRef.parse(c)) for c in binding.channels
            ]
        for name, rule in self.personas.items():
            found += [(f"[access.personas.{name}] channels", ChannelRef.parse(c)) for c in rule.channels]
        for where, channels in self.extra_channels.items():
            found += [(where, ChannelRef.parse(c)) for c in channels]
        return found

    async def attach(self, directory: Directory) -> None:
        """Take a platform's directory and resolve every channel name configured for it; a name
        the platform does not have is an :class:`AccessConfigError` naming it (a start-up error)."""
        platform = directory.platform
        self.directories[platform] = directory
        named = [
            (where, ref)
            for where, ref in self.configured_channels()
            if ref.is_name and ref.platform in (None, platform)
        ]
        if not named:  # nothing to resolve: the channel list (and its scope) is not needed
            return
        try:
            names = await self._read_names(platform)
        except _Unavailable as err:
            raise AccessConfigError(
                f"cannot read the {platform} channel list to resolve names: {err}"
            ) from None
        missing: list[str] = []
        for where, ref in named:
            channel_id = names.get(ref.value)
            if channel_id is not None:
                self._pins.setdefault((platform, ref.value), channel_id)
            elif ref.platform == platform:
                missing.append(f"{where}: no {platform} channel is named #{ref.value}")
        if missing:
            seen = ", ".join(f"#{n}" for n in sorted(names)[:20]) or "none"
            raise AccessConfigError(
                "; ".join(missing)
                + f" (channels the bot can see: {seen}). Fix the name, give the channel id instead, "
                "or invite the bot to the channel."
            )

    def renamed(self, platform: str, channel_id: str, name: str) -> None:
        """A channel was renamed: bindings and rules that named it keep it (they are pinned to
        its id); names read later see the new name."""
        names = self._names.setdefault(platform, {})
        for old in [n for n, i in names.items() if i == channel_id]:
            del names[old]
        names[normalise(name)] = channel_id
        for (pin_platform, pinned), pinned_id in self._pins.items():
            if pin_platform == platform and pinned_id == channel_id and pinned != normalise(name):
                log.info(
                    "%s channel %s, configured as #%s, is now #%s: still bound (update the "
                    "configuration to the new name when convenient)",
                    platform,
                    channel_id,
                    pinned,
                    normalise(name),
                )

    async def _read_names(self, platform: str) -> dict[str, str]:
        directory = self.directories[platform]
        try:
            async with asyncio.timeout(self.lookup_timeout):
                names = {normalise(k): v for k, v in (await directory.channels()).items()}
        except (DirectoryError, TimeoutError) as err:
            raise _Unavailable(str(err) or "timed out") from None
        self._names[platform] = names
        self._names_read[platform] = time.monotonic()
        return names

    async def _channel_id(self, platform: str, name: str) -> str | None:
        """The id ``#name`` names on ``platform``: pinned once seen, read again when unknown
        (at most once per ``group_cache_seconds``)."""
        pinned = self._pins.get((platform, name))
        if pinned is not None:
            return pinned
        names = self._names.get(platform, {})
        if (
            name not in names
            and time.monotonic() - self._names_read.get(platform, 0.0) > self.group_cache_seconds
        ):
            names = await self._read_names(platform)
        found = names.get(name)
        if found is not None:
            self._pins[(platform, name)] = found
        return found

    def _is_here(self, ref: ChannelRef, message: IncomingMessage) -> bool | None:
        """Whether ``ref`` is the message's channel from what is known now; None: a name that
        must be looked up."""
        if ref.platform not in (None, message.platform):
            return False
        if ref.workspace is not None and ref.workspace != message.workspace:
            return False
        if not ref.is_name:
            return ref.value == message.channel
        if message.platform not in self.directories:  # the console: channels have names only
            return ref.value == normalise(message.channel)
        pinned = self._pins.get((message.platform, ref.value))
        return None if pinned is None else pinned == message.channel

    async def _in(self, ref: ChannelRef, message: IncomingMessage) -> bool:
        known = self._is_here(ref, message)
        if known is not None:
            return known
        return await self._channel_id(message.platform, ref.value) == message.channel

    def channel_id(self, ref: ChannelRef) -> str | None:
        """A configured channel's id (pinned at start-up), for admin notices."""
        if not ref.is_name:
            return ref.value
        return self._pins.get((ref.platform or "", ref.value))

    # -- bindings -----------------------------------------------------------------------------
    def binding_for(self, message: IncomingMessage) -> tuple[str, Binding] | None:
        """The most specific binding of the message's channel (workspace, then platform, then
        any platform), from the names resolved at start-up."""
        found = [
            (ref.workspace is not None, ref.platform is not None, key, binding)
            for key, ref, binding in self.bindings
            if self._is_here(ref, message)
        ]
        if not found:
            return None
        *_, key, binding = max(found, key=lambda f: (f[0], f[1]))
        return key, binding

    # -- the decision -------------------------------------------------------------------------
    def applied(self, message: IncomingMessage, persona: str, file_rule: Rule) -> list[Applied]:
        rules = [Applied(f"the persona file of {persona!r}", file_rule)]
        if persona in self.personas:
            rules.append(Applied(f"[access.personas.{persona}]", self.personas[persona]))
        bound = self.binding_for(message)
        if bound is not None:
            rules.append(Applied(f"[personas.bindings] {bound[0]!r}", bound[1]))
        return rules

    async def check(self, message: IncomingMessage, persona: str, file_rule: Rule) -> None:
        """Return if ``message``'s asker may use ``persona`` there; else raise :class:`AccessRefused`."""
        if message.is_operator:
            return
        rules = self.applied(message, persona, file_rule)
        try:
            await self._decide(message, rules)
        except _Unavailable as err:
            log.warning(
                "access refused because a lookup failed (fail closed): user=%s platform=%s "
                "workspace=%s channel=%s persona=%s rule=membership_unavailable: %s",
                message.user,
                message.platform,
                message.workspace,
                message.channel,
                persona,
                err,
            )
            raise AccessRefused("membership_unavailable") from None

    async def _decide(self, message: IncomingMessage, rules: list[Applied]) -> None:
        for applied in rules:
            channels = [ChannelRef.parse(c) for c in applied.rule.channels]
            if channels and not [ref for ref in channels if await self._in(ref, message)]:
                raise AccessRefused("channels")
        for applied in rules:
            if not applied.rule.deny.is_empty and await self._matches(applied.rule.deny, message):
                raise AccessRefused("deny")
        allows = [a.rule.allow for a in rules if not a.rule.allow.is_empty]
        if not allows:
            return
        if any(_listed(who, message) for who in allows):
            return
        for who in allows:
            if await self._in_groups(who, message):
                return
        raise AccessRefused("users/roles")

    def allows_now(self, message: IncomingMessage, persona: str, file_rule: Rule) -> bool:
        """The decision from what is known without a lookup (a persona list, autocomplete): a
        rule that needs a lookup counts as not allowing."""
        if message.is_operator:
            return True
        rules = self.applied(message, persona, file_rule)
        for applied in rules:
            channels = [ChannelRef.parse(c) for c in applied.rule.channels]
            if channels and not any(self._is_here(ref, message) for ref in channels):
                return False
        if any(not a.rule.deny.is_empty and _listed(a.rule.deny, message) for a in rules):
            return False
        allows = [a.rule.allow for a in rules if not a.rule.allow.is_empty]
        return not allows or any(_listed(who, message) for who in allows)

    async def _matches(self, who: Who, message: IncomingMessage) -> bool:
        return _listed(who, message) or await self._in_groups(who, message)

    async def _in_groups(self, who: Who, message: IncomingMessage) -> bool:
        if message.platform != "slack" or not who.slack_groups:
            return False
        user = normalise(message.user)
        for group in sorted(who.slack_groups):
            if user in await self._members(message.platform, group):
                return True
        return False

    async def _members(self, platform: str, group: str) -> frozenset[str]:
        """A group's members, from the cache while it is fresh, else read again (fail closed)."""
        key = (platform, normalise(group))
        cached = self._groups.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        directory = self.directories.get(platform)
        if directory is None:
            raise _Unavailable(f"no {platform} directory to read group {group!r}")
        try:
            async with asyncio.timeout(self.lookup_timeout):
                members = await directory.group_members(group)
        except TimeoutError:
            raise _Unavailable(
                f"reading the members of {group} timed out after {self.lookup_timeout:g}s"
            ) from None
        except DirectoryError as err:
            raise _Unavailable(f"cannot read the members of {group}: {err}") from None
        members = frozenset(normalise(m) for m in members)
        self._groups[key] = (now + self.group_cache_seconds, members)
        return members


def _listed(who: Who, message: IncomingMessage) -> bool:
    """Whether the asker is in one of ``who``'s lists that need no lookup."""
    user = normalise(message.user)
    roles = {normalise(r) for r in message.user_roles}

    def has(values: Iterable[str]) -> set[str]:
        return {normalise(v) for v in values}

    if user in has(who.users) or roles & has(who.roles):
        return True
    if message.platform == "slack" and user in has(who.slack_users):
        return True
    return message.platform == "discord" and (
        user in has(who.discord_users) or bool(roles & has(who.discord_roles))
    )
