"""botkit's public testing kit: test plugins and adapters the way botkit tests itself.

- :class:`Standin`: the vLLM stand-in server (it lives in the runtime, :mod:`botkit.llm.standin`;
  ``botkit standin`` runs it from the shell);
- :class:`TestBot`: a whole bot (stand-in, SQLite through the real migrations, personas,
  plugins) in one ``async with``;
- :class:`RecordingReply`: a live reply that records what the user would see;
- :class:`FakeSlack`, :class:`FakeDiscord`: local servers speaking Slack's Web API and Socket
  Mode, and Discord's REST API and gateway, for adapter tests against the real SDKs.

Names are imported on first use (PEP 562), so ``from botkit.testing import RecordingReply`` does
not load the fake platforms, and nothing here is imported by the runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botkit.llm.standin import Standin
    from botkit.testing.fake_discord import FakeDiscord
    from botkit.testing.fake_slack import FakeSlack
    from botkit.testing.recording import RecordingReply, ReplyCall
    from botkit.testing.testbot import TestBot

_WHERE = {
    "FakeDiscord": "botkit.testing.fake_discord",
    "FakeSlack": "botkit.testing.fake_slack",
    "RecordingReply": "botkit.testing.recording",
    "ReplyCall": "botkit.testing.recording",
    "Standin": "botkit.llm.standin",
    "TestBot": "botkit.testing.testbot",
}

__all__ = ["FakeDiscord", "FakeSlack", "RecordingReply", "ReplyCall", "Standin", "TestBot"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'botkit.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
