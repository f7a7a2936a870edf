"""What the core may ask a chat platform outside a reply: the platform-neutral directory.

Access rules name channels by ``#name`` and Slack user groups by handle; admins are told about a
broken persona edit in a channel or a direct message. Each adapter implements this interface with
its own SDK and hands it to the core (``AdapterHost.attach_directory``) before it serves, so the
core never imports a platform SDK and the adapter never sees the rules or the database.

Every method makes its calls once and raises :class:`DirectoryError` when the platform could not
answer (an API error, a timeout): the core then refuses rather than guesses (access fails closed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping


class DirectoryError(Exception):
    """The platform could not say (an API error, a timeout, an unknown group); ``str()`` says
    what failed, without tokens."""


class Directory(ABC):
    """One platform's names, groups and admin posts."""

    #: The platform this directory answers for (``IncomingMessage.platform``).
    platform: str = ""

    @abstractmethod
    async def channels(self) -> Mapping[str, str]:
        """Every channel the bot can see, by name (without ``#``, lower case) -> id."""

    async def group_members(self, group: str) -> frozenset[str]:
        """The user ids in a user group, named by handle (``@legal-team``) or id.

        The default: this platform has no user groups (Discord: roles arrive with each event).
        """
        raise DirectoryError(f"{self.platform} has no user groups (asked for {group!r})")

    async def post(self, channel_id: str, text: str) -> None:
        """Post ``text`` in a channel (an admin notice); raise :class:`DirectoryError` if refused."""
        raise DirectoryError(f"the {self.platform} adapter cannot post admin notices")

    async def message_user(self, user_id: str, text: str) -> None:
        """Send ``text`` to one user directly (an admin notice by DM)."""
        raise DirectoryError(f"the {self.platform} adapter cannot send direct messages")
