"""Holding one call of a fake platform where a test wants a crash (:meth:`FakeSlack.hold`,
:meth:`FakeDiscord.hold`): the call arrives, is applied or not, and is not answered until the
test releases it (or the fake stops), so a real ``botkit run`` can be SIGKILLed exactly there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hold:
    """One call held before it is answered (applied first, or not).

    ``reached`` is set once the call arrived (and, with ``apply``, took effect); it is answered
    only after :meth:`release` (or when the fake stops): a test SIGKILLs the caller meanwhile.
    """

    method: str
    apply: bool
    match: Callable[[Any], bool] | None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    args: Any = None  # the held call's arguments (Slack) or body (Discord), once it arrived
    taken: bool = False
    dropped: bool = False  # released by the fake's stop: a call held unapplied never takes effect

    def release(self) -> None:
        self.released.set()
