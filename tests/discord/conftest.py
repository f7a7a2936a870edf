"""Fixtures for the Discord adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord_harness import DiscordRig, discord_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[DiscordRig]:
    async with discord_rig(tmp_path) as value:
        yield value
