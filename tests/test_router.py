"""The router: duplicates, commands, persona choice and access, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from botkit.testing import RecordingReply, TestBot


async def test_duplicate_delivery_gets_exactly_one_reply(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        first, second = RecordingReply(), RecordingReply()
        message = bot.message("hello", delivery_id="evt-1")
        results = await asyncio.gather(bot.bot.submit(message, first), bot.bot.submit(message, second))
        for submission in results:
            await submission.wait()
        assert sorted(s.accepted for s in results) == [False, True]
        assert len(bot.standin.requests) == 1
    assert sorted(len(r.messages) for r in (first, second)) == [0, 1]


async def test_channel_binding_wins_over_command_and_default(tmp_path: Path) -> None:
    settings = {"personas": {"bindings": {"test:math-room": "math"}}}
    async with TestBot(tmp_path, settings=settings) as bot:
        await bot.ask(
            "2+2", channel="math-room", command="ask", args={"question": "2+2", "persona": "general"}
        )
        bound = bot.standin.requests[-1]["messages"][-1]["content"]
        await bot.ask("Who wrote War and Peace?", channel="lobby")
        default = bot.standin.requests[-1]["messages"][-1]["content"]
    assert "\\boxed{}" in bound
    assert "\\boxed{}" not in default  # not mathematics: the general persona's plain answer


async def test_restricted_persona_refused_without_role_and_allowed_with_it(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        refused = await bot.ask(
            "Can I break my lease?",
            command="ask",
            args={"question": "Can I break my lease?", "persona": "legal"},
        )
        assert bot.standin.requests == []
        allowed = await bot.ask(
            "Can I break my lease?",
            command="ask",
            args={"question": "Can I break my lease?", "persona": "legal"},
            roles=["legal"],
        )
        assert len(bot.standin.requests) == 1
    assert "not available to you" in refused.text and "legal" in refused.text
    assert allowed.error is None


async def test_unknown_command_and_admin_only_command(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        unknown = await bot.ask("", command="nope")
        denied = await bot.ask("", command="persona list")
        listed = await bot.ask("", command="persona list", roles=["admin"])
    assert "Unknown command 'nope'" in unknown.text and "math" in unknown.text
    assert "admins only" in denied.text
    assert "`math`" in listed.text and "`general`" in listed.text


async def test_oversized_message_is_refused_with_the_limit(tmp_path: Path) -> None:
    async with TestBot(tmp_path, settings={"bot": {"max_message_chars": 100}}) as bot:
        reply = await bot.ask("x" * 150)
        assert bot.standin.requests == []
    assert "150 characters" in reply.text and "100" in reply.text


async def test_question_too_long_for_the_context_is_refused_and_stored_as_failed(tmp_path: Path) -> None:
    async with TestBot(tmp_path, settings={"llm": {"max_model_len": 300, "max_tokens": 100}}) as bot:
        reply = await bot.ask("word " * 400)
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
    assert "too long for the model" in reply.text
    assert [r.status for r in rows] == ["failed"]


async def test_botkit_status_command_for_admins(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        denied = await bot.ask("", command="botkit status")
        shown = await bot.ask("", command="botkit status", roles=["admin"])
    assert "admins only" in denied.text
    assert shown.text.startswith("**Model backends**: ready, 0 waiting")
    assert bot.standin.base_url in shown.text


async def test_refusals_go_to_the_asker_alone_where_the_platform_can(tmp_path: Path) -> None:
    class NoticeReply(RecordingReply):
        notices: list[str]

        async def post_notice(self, text: str) -> bool:
            self.notices = [*getattr(self, "notices", []), text]
            return True

    async with TestBot(tmp_path) as bot:
        reply = await bot.ask(
            "x", command="ask", args={"question": "x", "persona": "legal"}, reply=NoticeReply()
        )
    assert reply.messages == []  # nothing posted in the channel
    assert "not available to you" in reply.notices[0]


async def test_a_console_refusal_says_which_roles_and_which_key(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        args = {"question": "Can I break my lease?", "persona": "legal"}
        console = await bot.ask("x", command="ask", args=args, platform="console", roles=["admin"])
        allowed = await bot.ask("x", command="ask", args=args, platform="console", roles=["admin", "legal"])
        slack = await bot.ask("x", command="ask", args=args, platform="slack")
    assert "open to the roles: legal" in console.text and "BOTKIT_CONSOLE__ROLES" in console.text
    assert allowed.error is None and "not available" not in allowed.text
    assert "Ask an admin of this bot for access." in slack.text and "roles" not in slack.text
