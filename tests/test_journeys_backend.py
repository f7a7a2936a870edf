"""Journey: the model server goes away while botkit runs.

The asker is told plainly, and the operator's `/healthz` (and so `botkit status`) says why in
words that point at the fix: nothing is listening at that address. It said "/health did not
answer 200", which reads as a server that answered wrongly, for a server that is not there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from subprocesses import free_port

from botkit.testing import Standin, TestBot


async def _healthz(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
        return await response.json()  # type: ignore[no-any-return]


async def test_a_server_gone_mid_run_is_told_to_the_asker_and_named_at_healthz(tmp_path: Path) -> None:
    standin = Standin()
    await standin.start()
    port = free_port()
    llm = {"health_interval": 0.1, "queue_timeout": 1}  # the apology after 1 s instead of 300
    settings = {"server": {"enabled": True, "port": port}, "llm": llm}
    async with TestBot(tmp_path, standin=standin, settings=settings) as bot:
        first = await bot.ask("What is 6*7?")
        root = standin.base_url.removesuffix("/v1")
        await standin.stop()
        for _ in range(200):
            report = await _healthz(port)
            if report["backends"][0]["state"] != "ready":
                break
            await asyncio.sleep(0.05)
        later = await bot.ask("What is 6*7?")
    assert "The final answer is 42." in first.text
    shown = [call.text for call in later.calls]
    assert any(
        text.startswith("⏳ _The model server is not answering right now; your question is queued")
        for text in shown
    )
    assert later.text == "The model server is not reachable right now; please ask again in a minute."
    assert report["ready"] is False
    error = report["backends"][0]["last_error"]
    assert error.startswith(f"cannot connect to {root}: "), error
    assert "Connect call failed" in error or "refused" in error.lower(), error
