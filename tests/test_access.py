"""How access rules combine (botkit.access), decided with a small in-memory directory; the same
rules against the real SDKs and the fake platforms are in tests/slack/test_slack_access.py and
tests/discord/test_discord_access.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pytest

from botkit.access import (
    AccessChecker,
    AccessConfigError,
    AccessRefused,
    ChannelRef,
    Directory,
    DirectoryError,
    Rule,
)
from botkit.config import ConfigError, load_settings
from botkit.events import IncomingMessage
from botkit.personas.loader import load_persona


class Workspace(Directory):
    """A Slack workspace as plain data: channel names and user groups."""

    platform = "slack"

    def __init__(self, groups: Mapping[str, set[str]], *, slow: bool = False) -> None:
        self.groups = groups
        self.slow = slow
        self.reads = 0

    async def channels(self) -> Mapping[str, str]:
        return {"legal-questions": "C0LEGAL", "general": "C0GENERAL"}

    async def group_members(self, group: str) -> frozenset[str]:
        self.reads += 1
        if self.slow:
            await asyncio.sleep(10)
        if group not in self.groups:
            raise DirectoryError(f"no group {group}")
        return frozenset(self.groups[group])


def ask(user: str, channel: str = "C0LEGAL", platform: str = "slack", **extra: object) -> IncomingMessage:
    return IncomingMessage(platform, "T0", channel, "1.0", user, "q", "d", **extra)  # type: ignore[arg-type]


FILE_RULE = Rule.model_validate({"allow": {"roles": ["legal"]}})


async def refused(checker: AccessChecker, message: IncomingMessage, rule: Rule = FILE_RULE) -> str | None:
    try:
        await checker.check(message, "legal", rule)
    except AccessRefused as err:
        return err.rule
    return None


def test_channel_refs_as_admins_write_them() -> None:
    assert ChannelRef.parse("slack:#Legal-Questions") == ChannelRef("slack", None, "legal-questions", True)
    assert ChannelRef.parse("slack:T0/C0LEGAL") == ChannelRef("slack", "T0", "C0LEGAL", False)
    assert ChannelRef.parse("#legal") == ChannelRef(None, None, "legal", True)
    assert ChannelRef.parse("C0LEGAL") == ChannelRef(None, None, "C0LEGAL", False)
    assert ChannelRef.parse("discord:1234") == ChannelRef("discord", None, "1234", False)


async def test_allow_lists_of_file_config_and_binding_add_up_and_deny_wins() -> None:
    binding = {
        "persona": "legal",
        "allow": {"slack_groups": ["@legal-team"]},
        "deny": {"slack_users": ["U0GONE"]},
    }
    checker = AccessChecker(
        load_settings(None, personas={"bindings": {"slack:#legal-questions": binding}}).personas.bindings, {}
    )
    await checker.attach(Workspace({"@legal-team": {"U0LAWYER", "U0GONE"}}))
    assert await refused(checker, ask("U0LAWYER")) is None  # the binding's group
    assert await refused(checker, ask("U0ROLE", user_roles=frozenset({"Legal"}))) is None  # the file's role
    assert await refused(checker, ask("U0ALICE")) == "users/roles"
    assert await refused(checker, ask("U0GONE")) == "deny"
    # Elsewhere the binding does not apply: only the file's role admits.
    assert await refused(checker, ask("U0LAWYER", channel="C0GENERAL")) == "users/roles"
    assert await refused(checker, ask("anyone", platform="console", is_operator=True)) is None


async def test_channels_lists_must_all_hold_and_names_resolve() -> None:
    rule = Rule.model_validate({"channels": ["slack:#legal-questions"]})
    checker = AccessChecker({}, {"legal": rule})
    await checker.attach(Workspace({}))
    assert await refused(checker, ask("U0X", user_roles=frozenset({"legal"}))) is None
    assert (
        await refused(checker, ask("U0X", channel="C0GENERAL", user_roles=frozenset({"legal"}))) == "channels"
    )


async def test_a_name_the_platform_lacks_is_an_error_naming_it_and_its_key() -> None:
    checker = AccessChecker({"slack:#legal-qa": "legal"}, {})
    with pytest.raises(
        AccessConfigError,
        match=r"\[personas.bindings\] 'slack:#legal-qa': no slack channel is named #legal-qa",
    ):
        await checker.attach(Workspace({}))


async def test_lookups_fail_closed_and_are_cached_while_fresh() -> None:
    rule = Rule.model_validate({"allow": {"slack_groups": ["@legal-team"]}})
    slow = AccessChecker({}, {"legal": rule}, lookup_timeout=0.05)
    await slow.attach(Workspace({"@legal-team": {"U0LAWYER"}}, slow=True))
    assert await refused(slow, ask("U0LAWYER"), Rule()) == "membership_unavailable"
    unknown = AccessChecker({}, {"legal": Rule.model_validate({"allow": {"slack_groups": ["@nobody"]}})})
    await unknown.attach(Workspace({}))
    assert await refused(unknown, ask("U0LAWYER"), Rule()) == "membership_unavailable"
    cached = AccessChecker({}, {"legal": rule})
    workspace = Workspace({"@legal-team": {"U0LAWYER"}})
    await cached.attach(workspace)
    for _ in range(3):
        assert await refused(cached, ask("U0LAWYER"), Rule()) is None
    assert workspace.reads == 1
    # A user named outright needs no lookup, so a failing directory does not stop them.
    direct = Rule.model_validate({"allow": {"slack_users": ["U0BOSS"], "slack_groups": ["@legal-team"]}})
    assert await refused(slow, ask("U0BOSS"), direct) is None


def test_persona_files_take_the_same_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "legal.md"
    path.write_text(
        "---\nname: legal\ndescription: Legal\naccess:\n  slack_groups: ['@legal-team']\n"
        "  discord_roles: [Legal]\n  deny:\n    slack_users: [U0GONE]\n---\n{{ question }}\n"
    )
    persona = load_persona(path)
    rule = persona.access.as_rule()
    assert rule.allow.slack_groups == {"@legal-team"} and rule.allow.discord_roles == {"Legal"}
    assert rule.deny.slack_users == {"U0GONE"}
    # Every turn checks its persona's rule: it is built once per loaded file (main: two pydantic
    # models per call), and a reload builds its own.
    assert persona.access.as_rule() is rule
    assert load_persona(path).access.as_rule() is not rule
    assert load_persona(path).access.as_rule() == rule


def test_a_misspelt_rule_key_in_the_configuration_names_it() -> None:
    with pytest.raises(ConfigError, match="slack_group"):
        load_settings(None, access={"personas": {"legal": {"allow": {"slack_group": ["@legal-team"]}}}})
