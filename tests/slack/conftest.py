"""Fixtures for the Slack adapter tests: the fake Slack, and botkits connected to it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_harness import Running, StartBot, running_bot

from botkit.testing.fake_slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def start_bot(tmp_path: Path, slack: FakeSlack) -> StartBot:
    counter = iter(range(1000))

    def start(**kwargs: Any) -> contextlib.AbstractAsyncContextManager[Running]:
        workdir = tmp_path / f"bot{next(counter)}"
        workdir.mkdir()
        manager: contextlib.AbstractAsyncContextManager[Running] = running_bot(workdir, slack, **kwargs)
        return manager

    return start
