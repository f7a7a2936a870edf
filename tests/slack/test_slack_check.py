"""Start-up checks: bad tokens and missing scopes stop botkit with a clear, secret-free error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from botkit.adapter import AdapterError
from botkit.config import ConfigError
from botkit.testing.fake_slack import ALL_SCOPES, FakeSlack
from botkit.testing.testbot import TestBot


async def _check(tmp_path: Path, slack_settings: dict[str, Any]) -> None:
    async with TestBot(tmp_path, settings={"slack": slack_settings}) as bot:
        assert bot.app is not None
        (adapter,) = bot.app.build_adapters(["slack"])
        await adapter.check()


async def test_good_tokens_pass(tmp_path: Path, slack: FakeSlack) -> None:
    await _check(tmp_path, slack.settings())


async def test_bad_bot_token_is_named_not_printed(tmp_path: Path, slack: FakeSlack) -> None:
    secret = "xoxb-this-is-wrong-123"
    with pytest.raises(AdapterError) as caught:
        await _check(tmp_path, slack.settings(bot_token=secret))
    message = str(caught.value)
    assert "slack.bot_token" in message
    assert "invalid_auth" in message
    assert "BOTKIT_SLACK__BOT_TOKEN" in message
    assert secret not in message


async def test_bad_app_token_is_named(tmp_path: Path, slack: FakeSlack) -> None:
    secret = "xapp-this-is-wrong-456"
    with pytest.raises(AdapterError) as caught:
        await _check(tmp_path, slack.settings(app_token=secret))
    assert "slack.app_token" in str(caught.value)
    assert secret not in str(caught.value)


async def test_missing_scope_is_named(tmp_path: Path, slack: FakeSlack) -> None:
    slack.scopes = set(ALL_SCOPES) - {"im:history"}
    with pytest.raises(AdapterError, match="im:history"):
        await _check(tmp_path, slack.settings())


async def test_unreachable_slack(tmp_path: Path, slack: FakeSlack) -> None:
    with pytest.raises(AdapterError, match="cannot reach Slack"):
        await _check(tmp_path, slack.settings(api_url="http://127.0.0.1:9/api/"))


async def test_settings_are_validated(tmp_path: Path, slack: FakeSlack) -> None:
    with pytest.raises(ConfigError, match="app_token"):
        await _check(tmp_path, {"bot_token": slack.bot_token, "api_url": slack.api_url})
    with pytest.raises(ConfigError, match="signing_secret"):
        await _check(tmp_path, {"bot_token": slack.bot_token, "mode": "http"})
    with pytest.raises(ConfigError, match="max_chars"):
        await _check(tmp_path, slack.settings(max_chars=5000))
    with pytest.raises(ConfigError, match="unknown_key"):
        await _check(tmp_path, slack.settings(unknown_key=1))


def test_manifest_asks_for_exactly_what_the_adapter_uses() -> None:
    import botkit_slack
    import yaml
    from botkit_slack.credentials import ACCESS_SCOPES, REQUIRED_SCOPES

    manifest = yaml.safe_load((Path(botkit_slack.__file__).parent / "manifest.yaml").read_text())
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(REQUIRED_SCOPES + ACCESS_SCOPES)
    assert sorted(manifest["settings"]["event_subscriptions"]["bot_events"]) == [
        "app_mention",
        "channel_rename",
        "group_rename",
        "message.channels",
        "message.groups",
        "message.im",
    ]
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    # One slash command per top-level command of the built-in plugins, as the adapter registers.
    from botkit_slack.commands import top_level_names

    from botkit.config import load_settings
    from botkit.plugins.loader import load_plugins

    specs = [c.spec for p in load_plugins(load_settings(None)) for c in p.commands]
    slash = manifest["features"]["slash_commands"]
    assert [c["command"] for c in slash] == [f"/{name}" for name in top_level_names(specs)]
    assert all(c["description"] and c["should_escape"] is False for c in slash)
