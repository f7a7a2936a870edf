"""Access rules in the configuration on Slack, through slack-bolt and the fake Slack: a channel
bound by name to the legal persona with its user group, refusals that are ephemeral, name whom to
ask and are audited, membership read from ``usergroups.users.list`` (cached, fail closed),
renames, start-up errors, the slash command's first placeholder, and admin notices of a broken
persona edit."""

from __future__ import annotations

import logging
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from slack_harness import StartBot, wait_answered, wait_idle

from botkit.adapter import AdapterError
from botkit.personas import shipped_personas_dir
from botkit.testing.fake_slack import FakeSlack

REPO = Path(__file__).resolve().parents[2]
CONTACT = "#it-help or legal-ops@example.com"
LEGAL_BEFORE = "_General legal information, not legal advice."
LEGAL_AFTER = (
    "_This is general information, not legal advice; consult a qualified lawyer about your situation._"
)

GOVERNED: dict[str, Any] = {
    "personas": {
        "bindings": {
            "slack:#legal-questions": {"persona": "legal", "allow": {"slack_groups": ["@legal-team"]}}
        }
    },
    "access": {"contact": CONTACT},
}


@pytest.fixture
def workspace(slack: FakeSlack) -> FakeSlack:
    """The legal channel and its user group, as the example configuration expects them."""
    slack.add_channel("legal-questions", "C0LEGAL")
    slack.add_usergroup("legal-team", ["U0LAWYER"], "S0LEGAL")
    return slack


async def test_a_group_member_is_answered_and_a_non_member_refused_privately_and_audited(
    workspace: FakeSlack, start_bot: StartBot
) -> None:
    slack = workspace
    async with start_bot(core=GOVERNED) as bot:
        bot.bot.standin.script_reply("A sublet usually needs the landlord's consent.")
        await slack.wait_for_connections(1)
        member = slack.mention_event("Can I sublet?", channel="C0LEGAL", user="U0LAWYER")
        await slack.push_event(member)
        final = await wait_answered(slack, member, until=lambda text: text.endswith(LEGAL_AFTER))
        await wait_idle(bot.bot)
        outsider = slack.mention_event("Can I sublet too?", channel="C0LEGAL", user="U0ALICE")
        await slack.push_event(outsider)
        await slack.wait_for(lambda: slack.ephemerals)
        await wait_idle(bot.bot)
        rows = [r for r in await bot.bot.store.audit_entries() if r.action == "refusal"]
    assert final.startswith("A sublet usually needs")
    (notice,) = slack.ephemerals
    assert (notice.user, notice.channel) == ("U0ALICE", "C0LEGAL")
    assert f"contact {CONTACT}" in notice.text
    assert "legal-team" not in notice.text and "group" not in notice.text  # never which rule
    assert slack.thread_replies("C0LEGAL", outsider["ts"]) == []  # nothing public for the outsider
    assert len(bot.bot.standin.requests) == 1
    (row,) = rows
    assert (row.platform, row.channel, row.actor) == ("slack", "C0LEGAL", "U0ALICE")
    assert (row.detail["persona"], row.detail["rule"]) == ("legal", "users/roles")


async def test_membership_is_cached_and_a_lookup_that_fails_refuses_and_is_logged(
    workspace: FakeSlack, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    slack = workspace
    async with start_bot(core=GOVERNED) as bot:
        await slack.wait_for_connections(1)
        slack.fail_with_error("usergroups.users.list", "internal_error")
        failing = slack.mention_event("Can I sublet?", channel="C0LEGAL", user="U0LAWYER")
        with caplog.at_level(logging.WARNING, logger="botkit.access"):
            await slack.push_event(failing)
            await slack.wait_for(lambda: slack.ephemerals)
            await wait_idle(bot.bot)
        for question in ("First question?", "Second question?"):  # read once, then from the cache
            event = slack.mention_event(question, channel="C0LEGAL", user="U0LAWYER")
            await slack.push_event(event)
            await wait_answered(slack, event, until=lambda text: text.endswith(LEGAL_AFTER))
            await wait_idle(bot.bot)
        rows = [r for r in await bot.bot.store.audit_entries() if r.action == "refusal"]
    (notice,) = slack.ephemerals
    assert notice.user == "U0LAWYER" and CONTACT in notice.text
    assert slack.thread_replies("C0LEGAL", failing["ts"]) == []
    (row,) = rows
    assert row.detail["rule"] == "membership_unavailable"
    (logged,) = [r.getMessage() for r in caplog.records if "fail closed" in r.getMessage()]
    assert "user=U0LAWYER" in logged and "channel=C0LEGAL" in logged and "persona=legal" in logged
    assert "internal_error" in logged and "xoxb" not in logged
    assert len(slack.calls_of("usergroups.users.list")) == 2  # the failed one, then one cached read
    assert len(slack.calls_of("usergroups.list")) == 2  # the handle is found before each read


async def test_renaming_the_bound_channel_keeps_its_binding(
    workspace: FakeSlack, start_bot: StartBot
) -> None:
    slack = workspace
    async with start_bot(core=GOVERNED) as bot:
        await slack.wait_for_connections(1)
        envelope = await slack.rename_channel("C0LEGAL", "legal-qa")
        await slack.wait_for_ack(envelope["envelope_id"])
        member = slack.mention_event("After the rename?", channel="C0LEGAL", user="U0LAWYER")
        await slack.push_event(member)
        await wait_answered(slack, member, until=lambda text: text.endswith(LEGAL_AFTER))
        await wait_idle(bot.bot)
        outsider = slack.mention_event("And me?", channel="C0LEGAL", user="U0ALICE")
        await slack.push_event(outsider)
        await slack.wait_for(lambda: slack.ephemerals)
    assert slack.channels["C0LEGAL"]["name"] == "legal-qa"
    assert "'legal' persona is not available" in slack.ephemerals[0].text


async def test_a_channel_name_that_does_not_resolve_is_a_start_up_error_naming_it(
    workspace: FakeSlack, start_bot: StartBot
) -> None:
    core = {"personas": {"bindings": {"slack:#legal-qestions": "legal"}}}
    with pytest.raises(AdapterError) as raised:
        async with start_bot(core=core):
            pass
    message = str(raised.value)
    assert "'slack:#legal-qestions'" in message and "no slack channel is named #legal-qestions" in message
    assert "#legal-questions" in message  # the names it can see, to spot the typo


async def test_a_channel_name_in_a_persona_file_that_does_not_resolve_stops_start_up(
    workspace: FakeSlack, start_bot: StartBot, tmp_path: Path
) -> None:
    personas = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), personas)
    legal = personas / "legal.md"
    legal.write_text(
        legal.read_text().replace("access:\n", 'access:\n  channels: ["slack:#legal-qestions"]\n', 1)
    )
    with pytest.raises(AdapterError) as raised:
        async with start_bot(core={"personas": {"dir": str(personas)}}):
            pass
    message = str(raised.value)
    assert "persona 'legal'" in message and "no slack channel is named #legal-qestions" in message


async def test_the_slash_command_placeholder_shows_the_before_notice_from_its_first_version(
    workspace: FakeSlack, start_bot: StartBot
) -> None:
    slack = workspace
    async with start_bot(core=GOVERNED) as bot:
        await slack.wait_for_connections(1)
        await slack.push_slash_command(
            slack.slash_command("/ask", "Can I sublet?", channel="C0LEGAL", user="U0LAWYER")
        )
        await slack.wait_for(
            lambda: any(m.text.endswith(LEGAL_AFTER) for m in slack.bot_messages("C0LEGAL")), timeout=15
        )
        await wait_idle(bot.bot)
    (reply,) = [m for m in slack.bot_messages("C0LEGAL") if m.thread_ts is None]
    assert reply.history[0].startswith(LEGAL_BEFORE), reply.history[0]
    assert all(version.startswith(LEGAL_BEFORE) for version in reply.history[:-1])


async def test_a_broken_persona_edit_notifies_the_admins_once_per_distinct_error(
    workspace: FakeSlack, start_bot: StartBot, tmp_path: Path
) -> None:
    slack = workspace
    slack.add_channel("botkit-admins", "C0ADMINS")
    personas = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), personas)
    legal = personas / "legal.md"
    good = legal.read_text()
    core = {
        "personas": {"dir": str(personas), "watch": False},
        "bot": {"admin_channels": ["slack:#botkit-admins"], "admin_dm_users": ["slack:U0ADMIN"]},
    }

    def notices(channel: str) -> list[str]:
        return [m.text for m in slack.bot_messages(channel)]

    async with start_bot(core=core) as bot:
        registry = bot.bot.app.bot.personas if bot.bot.app and bot.bot.app.bot else None
        assert registry is not None
        legal.write_text(good.replace("temperature: 0.6", "temprature: 0.6"))
        await registry.reload()
        await registry.reload()  # the same error again: no second notice
        first = notices("C0ADMINS")
        legal.write_text(good.replace("max_tokens: 2048", "max_tokens: lots"))
        await registry.reload()  # a different error: one more
        second = notices("C0ADMINS")
        legal.write_text(good)
        await registry.reload()  # fixed: nothing to say
        legal.write_text(good.replace("temperature: 0.6", "temprature: 0.6"))
        await registry.reload()  # broken again: told again
        third = notices("C0ADMINS")
        dms = notices("U0ADMIN")
    (notice,) = first
    assert "`legal.md`" in notice and "line 4" in notice and "temprature" in notice
    assert "previous version" in notice and "keeps serving" in notice
    assert len(second) == 2 and "max_tokens" in second[1]
    assert len(third) == 3
    assert dms == third  # the same notices by DM


async def test_the_shipped_example_configuration_is_all_it_takes(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """examples/governed-channels/botkit.toml as it is: each channel's group is answered there."""
    example = tomllib.loads((REPO / "examples" / "governed-channels" / "botkit.toml").read_text())
    slack.add_channel("legal-questions", "C0LEGAL")
    slack.add_channel("medical-questions", "C0MEDICAL")
    slack.add_channel("botkit-admins", "C0ADMINS")
    slack.add_usergroup("legal-team", ["U0LAWYER"])
    slack.add_usergroup("clinical-staff", ["U0NURSE"])
    core = {key: example[key] for key in ("bot", "personas", "access")}
    async with start_bot(core=core) as bot:
        await slack.wait_for_connections(1)
        for user, channel in (("U0LAWYER", "C0LEGAL"), ("U0NURSE", "C0MEDICAL")):
            event = slack.mention_event("A question", channel=channel, user=user)
            await slack.push_event(event)
            await wait_answered(slack, event, until=lambda text: "_This is general information" in text)
            await wait_idle(bot.bot)
        crossed = slack.mention_event("A question", channel="C0MEDICAL", user="U0LAWYER")
        await slack.push_event(crossed)
        await slack.wait_for(lambda: slack.ephemerals)
    (notice,) = slack.ephemerals
    assert notice.user == "U0LAWYER" and example["access"]["contact"] in notice.text
