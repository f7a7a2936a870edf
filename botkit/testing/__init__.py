"""botkit's public testing kit: test plugins and adapters the way botkit tests itself.

- :class:`Standin`: the vLLM stand-in server (``botkit standin`` runs it from the shell);
- :class:`TestBot`: a whole bot (stand-in, SQLite through the real migrations, personas,
  plugins) in one ``async with``;
- :class:`RecordingReply`: a live reply that records what the user would see.
"""

from botkit.testing.recording import RecordingReply, ReplyCall
from botkit.testing.standin import Standin
from botkit.testing.testbot import TestBot

__all__ = ["RecordingReply", "ReplyCall", "Standin", "TestBot"]
