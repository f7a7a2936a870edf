"""botkit's public testing kit: test plugins and adapters the way botkit tests itself.

- :class:`Standin`: the vLLM stand-in server (``botkit standin`` runs it from the shell);
- :class:`TestBot`: a whole bot (stand-in, SQLite through the real migrations, personas,
  plugins) in one ``async with``;
- :class:`RecordingReply`: a live reply that records what the user would see;
- :class:`FakeSlack`, :class:`FakeDiscord`: local servers speaking Slack's Web API and Socket
  Mode, and Discord's REST API and gateway, for adapter tests against the real SDKs.
"""

from botkit.testing.fake_discord import FakeDiscord
from botkit.testing.fake_slack import FakeSlack
from botkit.testing.recording import RecordingReply, ReplyCall
from botkit.testing.standin import Standin
from botkit.testing.testbot import TestBot

__all__ = ["FakeDiscord", "FakeSlack", "RecordingReply", "ReplyCall", "Standin", "TestBot"]
