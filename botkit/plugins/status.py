"""``/botkit status``: the model backends' state, for admins, where they already are (in chat)."""

from __future__ import annotations

from typing import Any

from botkit.plugins.api import CommandContext, Plugin

plugin: Plugin[Any] = Plugin("status", description="Backend status for admins (/botkit status).")


@plugin.command("status", "Show the model backends' state", group="botkit", admin_only=True)
async def status(ctx: CommandContext[Any]) -> None:
    report = ctx.backend_status()
    lines = [
        f"**Model backends**: {'ready' if report['ready'] else '⚠️ NOT READY'}, {report['waiting']} waiting"
    ]
    for backend in report["backends"]:
        lines.append(
            f"- `{backend['url']}`: {backend['state']}, {backend['in_flight']}/{backend['capacity']} in flight, "
            f"{backend['served']} served"
        )
        if backend["last_error"]:
            first_line = str(backend["last_error"]).splitlines()[0]
            lines.append(f"  last error: {first_line}")
    await ctx.respond("\n".join(lines), notice=True)
