"""Tell the admins when an edited persona file does not load: in the admin channels
(``[bot] admin_channels``) and by direct message (``[bot] admin_dm_users``).

The admins edit persona files; a broken edit keeps the previous version serving, so nothing
visible goes wrong for users and the log is the only other place that says so. The notice gives
the file, the line and the problem, once per distinct error (:class:`~botkit.audit.PersonaAuditor`
decides what is new: the same error again is not, a fixed file broken again is). It goes out
through each platform's :class:`~botkit.access.Directory`, which the adapters attached; a post
that fails is logged and never stops the reload.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from botkit.access import AccessChecker, ChannelRef, DirectoryError

if TYPE_CHECKING:
    from botkit.personas import Persona, PersonaError

log = logging.getLogger("botkit.admin_notices")


def notice_text(error: PersonaError, serving: Persona | None) -> str:
    """What admins read: which file, which line, what is wrong, and what serves meanwhile."""
    line = f" line {error.line}" if error.line is not None else ""
    hint = f" (hint: {error.hint})" if error.hint else ""
    still = (
        f"The previous version (hash {serving.content_hash[:12]}) keeps serving until the file is fixed."
        if serving is not None
        else "The persona is not available until the file is fixed."
    )
    return (
        f"⚠️ Persona file `{error.path.name}` did not load ({error.path}{line}): {error.problem}{hint}. "
        f"{still}"
    )


class AdminNotifier:
    """Posts one notice per new persona error to every configured admin channel and user."""

    def __init__(self, channels: Sequence[str], dm_users: Sequence[str], access: AccessChecker) -> None:
        self.channels = [ChannelRef.parse(c) for c in channels]
        self.dm_users = [ChannelRef.parse(u) for u in dm_users]
        self.access = access
        self.sent = 0  # notices posted (each target counts)

    async def __call__(self, error: PersonaError, serving: Persona | None) -> None:
        text = notice_text(error, serving)
        for ref in self.channels:
            directory = self.access.directories.get(ref.platform or "")
            channel = self.access.channel_id(ref)
            if directory is None or channel is None:
                log.warning("admin channel %s is not reachable (is its adapter running?): %s", ref, text)
                continue
            await self._send(directory.post(channel, text), str(ref))
        for ref in self.dm_users:
            directory = self.access.directories.get(ref.platform or "")
            if directory is None:
                log.warning("admin %s is not reachable (is its adapter running?): %s", ref, text)
                continue
            await self._send(directory.message_user(ref.value, text), str(ref))

    async def _send(self, sending: Awaitable[None], target: str) -> None:
        try:
            await sending
        except DirectoryError as err:
            log.warning("could not tell admin target %s about a broken persona file: %s", target, err)
            return
        self.sent += 1
