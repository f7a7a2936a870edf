"""What the model server receives: DeepSeek-R1's prompt rules, asserted on the wire."""

from __future__ import annotations

from pathlib import Path

from botkit.testing import TestBot


async def test_request_has_no_system_role_persona_in_user_turn_and_r1_sampling(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        bot.standin.script_reply("First answer.", reasoning="HIDDEN-REASONING-1")
        first = await bot.ask("What is a prime number?")
        await bot.ask("Is 7 one?")
        requests = list(bot.standin.requests)

    assert first.text == "First answer."
    assert len(requests) == 2
    for request in requests:
        assert all(m["role"] != "system" for m in request["messages"])
        assert request["temperature"] == 0.6
        assert request["top_p"] == 0.95
        assert request["stream"] is True
        assert request["stream_options"] == {"include_usage": True}

        general = bot.bot.personas.get("general")
        assert general is not None
        rendered = general.render("Is 7 one?", user_name="user-1", platform="test", channel="channel-1")
    messages = requests[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    # History: the earlier question as asked, the earlier answer without its reasoning.
    assert messages[0]["content"] == "What is a prime number?"
    assert messages[1]["content"] == "First answer."
    assert "HIDDEN-REASONING-1" not in str(requests[1])
    # The new turn: the "\n" guard, then the persona's instructions with the question inside.
    new_turn = messages[2]["content"]
    assert new_turn.startswith("\n")
    assert new_turn == "\n" + rendered
    assert "Is 7 one?" in rendered and len(rendered) > len("Is 7 one?") + 40


async def test_persona_sampling_and_math_directive(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        reply = await bot.ask("What is 17*23?", command="math", args={"question": "What is 17*23?"})
        request = bot.standin.requests[-1]
    content = request["messages"][-1]["content"]
    assert "Please reason step by step, and put your final answer within \\boxed{}." in content
    assert "What is 17*23?" in content
    assert "**Final answer:** `391`" in reply.text


async def test_user_text_is_never_rendered_as_a_template(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        await bot.ask("what does {{ 7*7 }} {% if x %}print{% endif %} mean?")
        content = bot.standin.requests[-1]["messages"][-1]["content"]
    assert "{{ 7*7 }} {% if x %}print{% endif %}" in content
    assert "49" not in content


async def test_long_history_is_trimmed_oldest_first_and_user_is_told(tmp_path: Path) -> None:
    settings = {"llm": {"max_model_len": 1024, "max_tokens": 256}}
    async with TestBot(tmp_path, settings=settings) as bot:
        for i in range(8):
            bot.standin.script_reply(f"Answer {i}: " + "word " * 60)
            await bot.ask(f"Question {i}: " + "filler " * 40)
        last = await bot.ask("And the final question?")
        request = bot.standin.requests[-1]
    contents = [m["content"] for m in request["messages"]]
    assert "Question 0" not in " ".join(contents)  # the oldest exchange went first
    assert "Question 7" in contents[-3]  # the newest kept exchange is the last before the question
    assert "And the final question?" in contents[-1]
    assert "left out" in last.text
