"""Plugins the pipeline tests use on every platform: an allow-list and an e-mail redactor."""

from __future__ import annotations

import re
from typing import Any

from botkit.plugins import NextStep, Plugin, PluginContext, Refusal, Request, TurnResult

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*")
ALLOW_LIST_REFUSAL = "⚠️ Ask #help-desk for access."


def allow_list(users: set[str]) -> Plugin[Any]:
    plugin: Plugin[Any] = Plugin("allow_list")

    @plugin.middleware
    async def only(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        if request.message.user not in users:
            raise Refusal(ALLOW_LIST_REFUSAL)
        return await next_step(request)

    return plugin


def redactor() -> Plugin[Any]:
    plugin: Plugin[Any] = Plugin("redact")

    @plugin.text_filter(question=True, reasoning=True)
    def redact(text: str) -> str:
        return EMAIL.sub("[email]", text)

    return plugin
