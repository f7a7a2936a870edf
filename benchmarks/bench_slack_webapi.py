"""CPU per Web API call of a reply's ``chat.postMessage`` / ``chat.update``: slack_sdk's method
against ``botkit_slack.webapi``'s, alternating rounds, on one shared aiohttp session.

The server (a bare aiohttp app answering as Slack does, ``{"ok": true, ...}``) runs in another
process, on CPU 1 where there are two; the client on CPU 0. A call's CPU is the client process's
``time.process_time`` over a round of sequential calls, divided by the calls: what the two ways
of sending differ in, since the request on the wire is the same
(``tests/slack/test_slack_webapi_lean.py``)::

    python benchmarks/bench_slack_webapi.py --rounds 9 --calls 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from botkit_slack import webapi
from botkit_slack.feedback import feedback_blocks
from botkit_slack.markers import metadata

T = TypeVar("T")
TEXT = " ".join(f"word{i}" for i in range(300))  # about a final answer's length here


async def serve(port: int) -> None:
    async def api(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True, "channel": "C1", "ts": "1.000002", "message": {"text": "x"}})

    app = web.Application()
    app.router.add_post("/api/{method}", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def round_of(way: str, client: Any, calls: int) -> float:
    """CPU µs per call over ``calls`` calls, half posts and half final edits."""
    blocks = feedback_blocks(TEXT, 7)
    meta: dict[str, Any] | None = metadata(None)
    start = time.process_time()
    for i in range(calls):
        if i % 2:
            if way == "sdk":
                await client.chat_update(channel="C1", ts="1.000002", text=TEXT, blocks=blocks, metadata=meta)
            else:
                await webapi.chat_update(
                    client, channel="C1", ts="1.000002", text=TEXT, blocks=blocks, metadata=meta
                )
        elif way == "sdk":
            await client.chat_postMessage(
                channel="C1", text="_Thinking…_", blocks=None, thread_ts="1.0001", metadata=meta
            )
        else:
            await webapi.chat_post_message(
                client, channel="C1", text="_Thinking…_", blocks=None, thread_ts="1.0001", metadata=meta
            )
    return (time.process_time() - start) / calls * 1e6


async def measure(port: int, rounds: int, calls: int) -> dict[str, list[float]]:
    import logging

    from botkit_slack.sdklogging import WEB_CLIENT_LOGGER, settled_logger
    from slack_sdk.web.async_client import AsyncWebClient

    results: dict[str, list[float]] = {"sdk": [], "webapi": []}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        client = AsyncWebClient(
            token="xoxb-bench",
            base_url=f"http://127.0.0.1:{port}/api/",
            retry_handlers=[],
            session=session,
            logger=settled_logger(WEB_CLIENT_LOGGER),
        )
        assert client.logger.level > logging.DEBUG
        for way in ("sdk", "webapi"):  # warm both
            await round_of(way, client, 200)
        for r in range(rounds):
            order = ("sdk", "webapi") if r % 2 == 0 else ("webapi", "sdk")
            for way in order:
                results[way].append(await round_of(way, client, calls))
    return results


def run(main: Coroutine[Any, Any, T]) -> T:
    """On uvloop where it is installed, as ``botkit run`` is (``[bot] event_loop = auto``)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--port", type=int, default=47311)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.serve:
        run(serve(args.port))
        return
    two = (os.cpu_count() or 1) >= 2
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(args.port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        if two:
            os.sched_setaffinity(server.pid, {1})
            os.sched_setaffinity(0, {0})
        results = run(measure(args.port, args.rounds, args.calls))
    finally:
        server.terminate()
        server.wait()
    print(f"load average {os.getloadavg()}")
    print("| way | CPU µs per call, each round | median | min-max |")
    print("|---|---|---|---|")
    for way, values in results.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {way} | {shown} | {statistics.median(values):.1f} | {min(values):.1f}-{max(values):.1f} |")
    diffs = [s - w for s, w in zip(results["sdk"], results["webapi"], strict=True)]
    print(
        f"sdk - webapi per round: median {statistics.median(diffs):.1f} µs, webapi cheaper in "
        f"{sum(d > 0 for d in diffs)} of {len(diffs)}"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"results": results, "load": os.getloadavg()}, out, indent=1)


if __name__ == "__main__":
    main()
