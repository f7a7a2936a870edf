"""The middleware chain every accepted event passes through, with an explicit ``next_step``.

Like bolt-python's ``app.use`` and nonebot2's pre/post processors, and unlike a hook list: each
middleware decides whether and how the rest runs. The order is the plugins' order in
``[plugins] enabled`` and, within a plugin, the order of declaration. Where the chain wraps
depends on the event: a command or message handler runs inside it; for a model turn the
innermost step is "check access, post the placeholder, generate", and the final edit comes after
the chain returned, so middleware can still change the answer the user sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botkit.plugins.api import (
    NextStep,
    PluginContext,
    RegisteredMiddleware,
    Request,
    TurnResult,
)


class MiddlewareChain:
    def __init__(self, entries: Sequence[tuple[RegisteredMiddleware, PluginContext[Any]]] = ()) -> None:
        self._entries = list(entries)

    @classmethod
    def of(cls, contexts: Sequence[PluginContext[Any]]) -> MiddlewareChain:
        """Every plugin's middleware, bound to that plugin's own context (never a global)."""
        return cls([(m, ctx) for ctx in contexts for m in ctx.plugin.middleware_chain])

    async def run(self, request: Request, innermost: NextStep) -> TurnResult:
        step = innermost
        for registered, ctx in reversed(self._entries):
            if request.kind in registered.kinds:
                step = _bind(registered, ctx, step)
        return await step(request)


def _bind(registered: RegisteredMiddleware, ctx: PluginContext[Any], next_step: NextStep) -> NextStep:
    async def step(request: Request) -> TurnResult:
        return await registered.fn(request, next_step, ctx)

    return step
