"""``[discord]``: the typed settings of the Discord adapter (env: ``BOTKIT_DISCORD__<KEY>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from botkit.config import SectionSettings

DISCORD_MESSAGE_LIMIT = 2000  # characters of ``content``, on create and on edit
INTERACTION_TOKEN_LIFETIME = 15 * 60.0  # seconds an interaction token can edit its response


class DiscordSettings(SectionSettings):
    """Everything the adapter needs; every endpoint is configurable so tests use a fake Discord."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix="BOTKIT_DISCORD__")

    token: SecretStr
    application_id: int | None = None
    guild_ids: list[int] = Field(default_factory=list)  # sync commands there (instant); empty: global
    api_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    mention_mode: Literal["thread", "inline"] = "thread"
    # per Discord bucket: a channel's (shared by every mention's reply there), a slash command's own
    edits_per_second: float = Field(1.0, gt=0)
    max_chars: int = Field(DISCORD_MESSAGE_LIMIT, ge=100, le=DISCORD_MESSAGE_LIMIT)
    # After this long an interaction reply continues as a normal channel message (token: 15 min).
    interaction_reply_seconds: float = Field(14 * 60.0, gt=0, lt=INTERACTION_TOKEN_LIFETIME)
    thread_auto_archive_minutes: Literal[60, 1440, 4320, 10080] = 1440
    guild_ready_timeout: float = Field(2.0, ge=0)
    # The restart pass finds a reply whose id was never recorded by listing the messages after
    # its question, in pages of 100: up to the first one posted this long after the turn was
    # accepted (its placeholder is posted at once; the margin covers a backlog of posts and
    # clock skew), and never more than this many pages per place (a busy channel).
    repair_window_seconds: float = Field(15 * 60.0, gt=0)
    repair_max_pages: int = Field(20, ge=1)
    # Deprecated, ignored: the core drains on shutdown for [bot] shutdown_grace (the adapter logs
    # a warning when this is set). Accepted for one release so old configurations still load.
    shutdown_grace: float | None = Field(None, ge=0)
