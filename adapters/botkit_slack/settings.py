"""``[slack]``: tokens, transport, rate budget and when the bot answers without a mention."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from botkit.config import SectionSettings, field_error

#: Slack rejects a ``chat.update`` whose ``text`` exceeds this (error ``msg_too_long``).
SLACK_TEXT_LIMIT = 4000
#: ``edits_per_minute``'s default; below it, ``edit_window = "auto"`` keeps the bucket alone.
_DEFAULT_EDITS_PER_MINUTE = 40.0


class SlackSettings(SectionSettings):
    """The ``[slack]`` table; every key is also ``BOTKIT_SLACK__<KEY>`` in the environment."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_prefix="BOTKIT_SLACK__")

    bot_token: SecretStr = Field(description="Bot token (xoxb-...).")
    app_token: SecretStr | None = Field(None, description="App-level token (xapp-...) for Socket Mode.")
    signing_secret: SecretStr | None = Field(None, description="Signing secret for HTTP mode.")
    mode: Literal["socket", "http"] = "socket"
    api_url: str = "https://slack.com/api/"
    # Seconds a Web API call waits for Slack's answer. Unset: as before, aiohttp's default (5
    # minutes) for the serving calls on the shared session, slack_sdk's 30 s for the others. A
    # reply's post that timed out may still have landed: before retrying it, botkit looks for it
    # in the thread (botkit_slack.lostpost), so a shorter timeout does not double a message.
    web_timeout: float | None = Field(None, gt=0, le=600)

    http_host: str = "0.0.0.0"
    http_port: int = Field(3000, ge=0, le=65535)
    http_path: str = "/slack/events"

    # chat.update is Tier 3 (50+/min per workspace per app); stay under it with room for bursts.
    edits_per_minute: float = Field(_DEFAULT_EDITS_PER_MINUTE, gt=0)
    edit_burst: int = Field(3, ge=1)
    # "rolling": chat.update is also counted in a moving window of edit_window_calls per 60 s
    # (Slack counts Tier 3 per minute): finals may spend the minute's unused calls at once, ahead
    # of partial edits, which keep the edits_per_minute/edit_burst pace. "bucket": that pace
    # alone (the behaviour before). "auto": "rolling" while edits_per_minute is between its
    # default and edit_window_calls; a pace set outside that (a workspace with other limits, or
    # none) is kept exactly, as before.
    edit_window: Literal["auto", "bucket", "rolling"] = "auto"
    edit_window_calls: int = Field(50, ge=1, le=1000)
    # chat.postMessage is "about 1 per second per channel, short bursts tolerated": placeholders,
    # continuations and finals posted anew draw on this, per channel, never on the edit budget.
    posts_per_minute: float = Field(55.0, gt=0)
    post_burst: int = Field(3, ge=1)
    # chat.delete is Tier 3 per workspace: removing placeholders that a final posted anew replaced.
    deletes_per_minute: float = Field(40.0, gt=0)
    # When the workspace's chat.update budget is backed up, post a reply's final text as a new
    # message (then delete the placeholder) if the channel's chat.postMessage budget is sooner.
    replace_final: bool = True
    # How a reply shows it is coming. "message": a placeholder, edited as the answer streams.
    # "status": the thread's status line (assistant.threads.setStatus), then the final answer as
    # one new message. "auto": "status" only while the workspace's chat.update budget cannot give
    # every live reply its edits (the placeholder otherwise). Replies outside threads (slash
    # commands) and to personas with a before-notice always get a placeholder.
    progress: Literal["auto", "message", "status"] = "auto"
    status_text: str = Field("is thinking…", min_length=1, max_length=100)
    # assistant.threads.setStatus is "Special" (a third-party note: 600/min per workspace): at
    # most status_burst + statuses_per_minute (400) in any minute by default.
    statuses_per_minute: float = Field(300.0, gt=0)
    status_burst: int = Field(100, ge=1)
    # The core splits so that each message's converted mrkdwn (SlackReply.measure) fits this.
    max_chars: int = Field(3900, ge=200, le=SLACK_TEXT_LIMIT)

    # "edits": chat.postMessage + chat.update. "native": chat.startStream/appendStream/stopStream
    # for replies in threads (falls back to edits whenever Slack refuses or the text is rewritten).
    # "auto": edits, except that a reply showing the status line whose final would be posted while
    # its channel's chat.postMessage budget is contended shows it as a native stream instead
    # (chat.startStream, Tier 2: a budget of its own), while stream_starts_per_minute allow.
    streaming: Literal["edits", "native", "auto"] = "edits"
    # chat.startStream and chat.stopStream are each Tier 2 (20+ per minute per workspace).
    stream_starts_per_minute: int = Field(20, ge=1, le=1000)
    # "!math 2+2" in a mention, DM or thread runs the command (as /math 2+2 does); "" turns it off.
    command_prefix: str = Field("!", max_length=3)

    require_mention: bool = True
    channels_without_mention: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _tokens_for_mode(self) -> Self:
        if self.mode == "socket" and self.app_token is None:
            raise field_error(
                "app_token", "mode 'socket' needs app_token (an xapp- token with connections:write)"
            )
        if self.mode == "http" and self.signing_secret is None:
            raise field_error(
                "signing_secret", "mode 'http' needs signing_secret (Basic Information > App Credentials)"
            )
        if not self.http_path.startswith("/"):
            raise field_error("http_path", "http_path must start with '/'")
        return self

    @property
    def update_window(self) -> tuple[int, float] | None:
        """``chat.update``'s moving window, (calls, seconds), or None for the token bucket alone."""
        rolling = self.edit_window == "rolling" or (
            self.edit_window == "auto"
            and _DEFAULT_EDITS_PER_MINUTE <= self.edits_per_minute <= self.edit_window_calls
        )
        return (self.edit_window_calls, 60.0) if rolling else None

    def mention_required_in(self, channel: str) -> bool:
        return self.require_mention and channel not in self.channels_without_mention
