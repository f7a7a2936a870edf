"""Access rules as people write them: who may use a persona, who may not, and where.

One vocabulary serves the persona file's ``access:`` block and the configuration
(``[access.personas.NAME]`` and a channel binding in ``[personas.bindings]``), so an admin learns
it once. Each kind of identity names its platform, because ids are only unique on one:

- ``users`` / ``roles``: any platform's user ids and role names (the console's ``[console] roles``,
  a Discord member's roles), as persona files have always had them;
- ``slack_users`` (``U0…``) and ``slack_groups`` (a user group's handle ``@legal-team`` or id
  ``S0…``, whose members Slack is asked for);
- ``discord_users`` (snowflakes) and ``discord_roles`` (a role's name or id).

This module only describes and parses; :mod:`botkit.access.checker` decides, with the platform's
:class:`~botkit.access.directory.Directory` for what must be looked up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

WHO_FIELDS = ("users", "roles", "slack_users", "slack_groups", "discord_users", "discord_roles")


def normalise(value: str) -> str:
    """Compare identifiers the way admins write them: ``#Legal`` and ``legal`` are one name."""
    return value.strip().lstrip("#@").casefold()


class Who(BaseModel):
    """A set of people: anyone listed in any of the lists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: frozenset[StrictStr] = frozenset()
    roles: frozenset[StrictStr] = frozenset()
    slack_users: frozenset[StrictStr] = frozenset()
    slack_groups: frozenset[StrictStr] = frozenset()
    discord_users: frozenset[StrictStr] = frozenset()
    discord_roles: frozenset[StrictStr] = frozenset()

    @field_validator(*WHO_FIELDS, mode="before")
    @classmethod
    def _blank_is_empty(cls, value: Any) -> Any:
        # ``roles:`` with nothing after it is YAML null; admins mean "nobody listed".
        return frozenset() if value is None else value

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in WHO_FIELDS)


class Rule(BaseModel):
    """``allow`` (if anything is listed, only those), ``deny`` (never these) and ``channels``
    (only there: ``#name`` or an id, optionally ``slack:``/``discord:`` in front)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: Who = Field(default_factory=Who)
    deny: Who = Field(default_factory=Who)
    channels: frozenset[StrictStr] = frozenset()

    @field_validator("allow", "deny", mode="before")
    @classmethod
    def _blank_who(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("channels", mode="before")
    @classmethod
    def _blank_channels(cls, value: Any) -> Any:
        return frozenset() if value is None else value


class Binding(Rule):
    """A channel bound to a persona, with the access rules of that channel (all optional)."""

    persona: StrictStr


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """One channel as configured: ``platform`` None means "on any platform"; a ``name`` is
    written ``#legal-questions`` and resolved to an id through the platform's directory."""

    platform: str | None
    workspace: str | None
    value: str
    is_name: bool

    @classmethod
    def parse(cls, text: str) -> ChannelRef:
        """``slack:#legal``, ``slack:T0/C0LEGAL``, ``discord:1234``, ``#legal``, ``C0LEGAL``."""
        platform: str | None = None
        rest = text.strip()
        head, sep, tail = rest.partition(":")
        if sep and head and not head.startswith("#") and "/" not in head:
            platform, rest = head.strip().lower(), tail.strip()
        workspace: str | None = None
        if "/" in rest and not rest.startswith("#"):
            workspace, _, rest = rest.partition("/")
        is_name = rest.startswith("#")
        return cls(platform, workspace or None, normalise(rest) if is_name else rest, is_name)

    def __str__(self) -> str:
        where = f"{self.platform}:" if self.platform else ""
        return f"{where}#{self.value}" if self.is_name else f"{where}{self.value}"
