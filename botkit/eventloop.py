"""Which asyncio event loop botkit runs on: ``[bot] event_loop = auto | uvloop | asyncio``.

Why it is a setting: botkit's hot path is many small socket reads (one per SSE chunk of every
stream) and writes, where uvloop's libuv loop spends less CPU per callback than the standard
library's; ``auto`` (the default) takes it when it is installed (``pip install -e '.[speed]'``)
and the standard loop otherwise, ``uvloop`` insists on it (an error at start-up when missing),
``asyncio`` never uses it (to rule it out when chasing a problem).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
T = TypeVar("T")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory :class:`asyncio.Runner` gets for ``choice``; None is the standard loop."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return None
    try:
        import uvloop
    except ImportError as err:
        raise RuntimeError(
            "[bot] event_loop = 'uvloop' but uvloop is not installed: pip install -e '.[speed]'"
        ) from err
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, T], choice: EventLoopChoice = "asyncio") -> T:
    """:func:`asyncio.run` on the loop ``choice`` names."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(coro)
