"""CPU per Slack Web API call on botkit's reply path (``SlackReply.edit`` -> ``chat.update``).

A :class:`~botkit.testing.fake_slack.FakeSlack` runs in a process of its own (pinned to CPU 1
where there are two); this process (CPU 0) posts one message and edits it ``--calls`` times with
the end-to-end benchmark's answer (about 1,000 characters), ``--concurrency`` edits in flight,
and reports its own CPU (``time.process_time``) per call. Arms, interleaved over ``--rounds``
(the median is reported, the machine may be shared):

* ``sdk-logger``: the client as slack_sdk builds it by default (its logger's level unset, so every
  call formats its debug messages);
* ``botkit``: the client as the Slack adapter builds it (:mod:`botkit_slack.sdklogging`);
* ``new-connection``: ``botkit`` with a connector that closes each connection after its call
  (what a burst of calls with no idle connection pays: one TCP connect per call);
* ``raw-aiohttp``: no slack_sdk: ``session.post`` of the same JSON and ``await resp.json()``,
  the text converted as ``SlackReply`` converts it (what a hand-written client could save).

Run from the repository root::

    python benchmarks/bench_slack_calls.py --calls 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO, REPO / "adapters"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import aiohttp  # noqa: E402
from botkit_slack.reply import SlackReply, fit_text  # noqa: E402
from botkit_slack.sdklogging import WEB_CLIENT_LOGGER, settled_logger  # noqa: E402
from botkit_slack.settings import SlackSettings  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

ARMS = ("sdk-logger", "botkit", "new-connection", "raw-aiohttp")
TOKEN = "xoxb-fake-bot-token"


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def _serve(queue: Any) -> None:
    from botkit.testing.fake_slack import FakeSlack

    async def main() -> None:
        fake = FakeSlack(bot_token=TOKEN)
        await fake.start()
        queue.put(fake.api_url)
        await asyncio.Event().wait()

    _pin(1)
    asyncio.run(main())


def _client(arm: str, url: str, session: aiohttp.ClientSession) -> AsyncWebClient:
    if arm == "sdk-logger":
        logger = logging.getLogger(WEB_CLIENT_LOGGER)
        logger.setLevel(logging.NOTSET)  # slack_sdk's default: nothing set on its own logger
    else:
        logger = settled_logger(WEB_CLIENT_LOGGER)
    return AsyncWebClient(token=TOKEN, base_url=url, retry_handlers=[], session=session, logger=logger)


async def _round(arm: str, url: str, calls: int, concurrency: int) -> float:
    """Microseconds of this process's CPU per edit."""
    connector = aiohttp.TCPConnector(limit=0, force_close=arm == "new-connection")
    session = aiohttp.ClientSession(connector=connector)
    try:
        client = _client(arm, url, session)
        settings = SlackSettings(bot_token=TOKEN, app_token="xapp-fake-app-token", api_url=url)
        reply = SlackReply(client, settings, team_id="T0FAKE", channel="C0GENERAL", thread_ts=None)
        ts = await reply.post_placeholder("_Thinking…_")
        # The end-to-end benchmark's answer (bench_e2e.py: the stand-in quotes a 230-word question).
        words = " ".join(f"w{i % 97}" for i in range(230))
        headers = {"Authorization": f"Bearer {TOKEN}"}

        async def edit(i: int) -> None:
            text = f'You asked: "Q{i} please summarise: {words}"\n\nThis is a reply.'
            if arm != "raw-aiohttp":
                await reply.edit(ts, text)
                return
            body = {"channel": "C0GENERAL", "ts": ts, "text": fit_text(text)}
            async with session.post(f"{url}chat.update", json=body, headers=headers) as response:
                await response.json()

        await asyncio.gather(*(edit(i) for i in range(concurrency)))  # connections opened
        started = time.process_time()
        for base in range(0, calls, concurrency):
            await asyncio.gather(*(edit(base + j) for j in range(concurrency)))
        return (time.process_time() - started) / calls * 1e6
    finally:
        await session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arms", default=",".join(ARMS))
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)  # as `botkit run` sets it up
    queue: Any = mp.get_context("spawn").Queue()
    server = mp.get_context("spawn").Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    try:
        url = queue.get(timeout=30)
        _pin(0)
        arms = [a for a in ns.arms.split(",") if a]
        results: dict[str, list[float]] = {arm: [] for arm in arms}
        for _ in range(ns.rounds):
            for arm in arms:
                results[arm].append(asyncio.run(_round(arm, url, ns.calls, ns.concurrency)))
        print(f"{ns.calls} chat.update per round, {ns.concurrency} in flight, {ns.rounds} rounds")
        print("| arm | µs CPU per call (median) | rounds |")
        print("|---|---|---|")
        for arm, values in results.items():
            rounds = ", ".join(f"{v:.0f}" for v in values)
            print(f"| {arm} | {statistics.median(values):.0f} | {rounds} |")
    finally:
        server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
