"""The bad-input corpus every adapter is driven with: what users (and models) really send."""

from __future__ import annotations

#: Questions, by name. Each must end in exactly one reply or one visible notice, never an error.
QUESTIONS: dict[str, str] = {
    "whitespace": "   \t  ",
    "huge": "word " * 8_000,  # 40,000 characters: over bot.max_message_chars
    "lone surrogates": "What is 2+2? \ud83d and \udc00",
    "controls": "What is 3+3?\x00\x07\x1b[31m",
    "zero-width and rtl": "What\u200b is\u200d 4+4? \u202eevil\u202c \u2066isolate\u2069",
    "template syntax": "{{ 7*7 }} {% for x in range(3) %}{{ x }}{% endfor %} {{ config }} ${HOME}",
    "mention injection": "<!channel> <!here> <!everyone> @everyone @here <@U0BOB> <@&1234> <#C0GENERAL>",
    "markup": "**bold** `code` ```\nunclosed fence\n<script>alert(1)</script> [x](javascript:alert(1))",
}

#: What a model might answer that must never ping anyone when shown.
INJECTED_ANSWER = (
    "Sure! <!channel> <!here> <!everyone> @everyone @here <@U0BOB> <!subteam^S0TEAM|@team> <@&1234> "
    "and that is all, from the botkit vLLM stand-in."
)

#: Slack's special syntax that notifies people if it reaches a message unescaped.
SLACK_PINGS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^", "<@U0BOB>")
