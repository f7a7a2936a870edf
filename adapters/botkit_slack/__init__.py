"""botkit's Slack adapter: @mentions, thread follow-ups, DMs and slash commands, streamed by
``chat.update`` (or Slack's native streaming methods).

Built on slack-bolt's ``AsyncApp``, over Socket Mode (default) or the HTTP Events API. Setup:
``adapters/botkit_slack/README.md`` and the app manifest next to it.
"""

from botkit_slack.adapter import SlackAdapter
from botkit_slack.mrkdwn import to_mrkdwn
from botkit_slack.reply import SlackReply
from botkit_slack.settings import SlackSettings

__all__ = ["SlackAdapter", "SlackReply", "SlackSettings", "to_mrkdwn"]
