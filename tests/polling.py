"""Waiting in tests for a condition that another process or task brings about."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], seconds: float = 30) -> None:
    """Until ``predicate()`` holds, checked every 50 ms; AssertionError after ``seconds``."""
    for _ in range(int(seconds * 20)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")
