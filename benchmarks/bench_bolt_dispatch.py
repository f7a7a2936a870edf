"""CPU per Slack event in bolt's dispatch, through the app the Slack adapter builds.

What one ``app_mention`` costs botkit between the Socket Mode envelope and ``host.submit``:
``AsyncApp.async_dispatch`` (bolt's global middlewares, authorization, listener matching, the
listener's own middlewares and keyword arguments, the ack) and the adapter's listener (the event
turned into an ``IncomingMessage`` and a ``SlackReply``). The app is built by
``SlackAdapter._build_app``, as ``botkit run`` builds it; the host is a stand-in whose ``submit``
accepts at once (no store, no turn), so only bolt's and the adapter's work is timed. No network:
no listener here calls the Web API. The end-to-end benchmark cannot resolve this part (a few
per cent of a reply), this can.

Arms run in subprocesses, one after the other in each round (``this`` = this checkout, plus any
``--compare LABEL=PATH``, e.g. a ``git archive`` of main), each dispatching ``--events`` events
``--concurrency`` at a time; the median over ``--rounds`` of CPU µs per event
(``time.process_time``) is reported::

    python benchmarks/bench_bolt_dispatch.py --compare before=/tmp/base --rounds 5
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _body(n: int) -> dict[str, Any]:
    """An ``app_mention`` ``event_callback`` as the fake Slack sends it (its shape, fixed ids)."""
    ts = f"1700000000.{n:06d}"
    event = {
        "type": "app_mention",
        "channel": "C0GENERAL",
        "user": "U0ALICE",
        "text": f"<@U0BOTKIT> Q{n} please summarise: " + " ".join(f"w{i}" for i in range(230)),
        "ts": ts,
        "team": "T0FAKE",
        "event_ts": ts,
    }
    return {
        "token": "verification-token-unused",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{n:010d}",
        "event_time": 1700000000,
        "authorizations": [{"team_id": "T0FAKE", "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": "0123456789abcdef",
    }


async def _measure(events: int, concurrency: int) -> float:
    """CPU µs per dispatched event (this process, after a warm-up)."""
    from botkit_slack.adapter import SlackAdapter
    from botkit_slack.credentials import BotAuth
    from botkit_slack.events import BotIdentity
    from botkit_slack.settings import SlackSettings
    from botkit_slack.threads import ThreadTracker
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_sdk.web.async_client import AsyncWebClient

    from botkit.adapter import Submission
    from botkit.testing.fake_slack import ALL_SCOPES

    class Host:
        """Accepts every message at once: the store and the turn are not what is measured."""

        commands: tuple[Any, ...] = ()
        submitted = 0

        async def submit(self, message: Any, reply: Any, *, redeliverable: bool = False) -> Submission:
            Host.submitted += 1
            return Submission(True)

    settings = SlackSettings(
        bot_token="xoxb-bench", app_token="xapp-bench", api_url="http://127.0.0.1:9/api/"
    )
    adapter = SlackAdapter(Host(), settings)  # type: ignore[arg-type]
    adapter.auth = BotAuth(BotIdentity("U0BOTKIT", "B0BOTKIT"), "T0FAKE", None, ",".join(sorted(ALL_SCOPES)))
    adapter.identity = adapter.auth.identity
    client = adapter._client = adapter._replies = AsyncWebClient(
        token="xoxb-bench", base_url=settings.api_url
    )
    adapter._threads = ThreadTracker(client)
    app = adapter._build_app(client)

    bodies = [_body(n) for n in range(events + max(concurrency, events // 10))]  # built untimed

    async def dispatch(start: int, count: int) -> None:
        for n in range(start, start + count):
            response = await app.async_dispatch(AsyncBoltRequest(body=bodies[n], mode="socket_mode"))
            assert response.status == 200, response.body

    async def run(offset: int, total: int) -> None:
        share = total // concurrency
        await asyncio.gather(*(dispatch(offset + i * share, share) for i in range(concurrency)))

    await run(0, max(concurrency, events // 10))  # warm-up: imports, first-call caches
    before = Host.submitted
    started = time.process_time()
    await run(max(concurrency, events // 10), events)
    spent = time.process_time() - started
    done = Host.submitted - before
    assert done == events - events % concurrency, (done, events)
    return spent / done * 1e6


def _child(ns: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)  # as botkit run: INFO and above, not DEBUG
    print(json.dumps({"us_per_event": asyncio.run(_measure(ns.events, ns.concurrency))}))


def _arm(path: Path, ns: argparse.Namespace) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), str(path / "adapters")]))
    args = [sys.executable, str(Path(__file__).resolve()), "--child", "--events", str(ns.events)]
    args += ["--concurrency", str(ns.concurrency)]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True, cwd=path).stdout
    return float(json.loads(out.strip().splitlines()[-1])["us_per_event"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        _child(ns)
        return
    arms = [tuple(c.split("=", 1)) for c in ns.compare] + [("this", str(REPO))]
    results: dict[str, list[float]] = {label: [] for label, _ in arms}
    for _ in range(ns.rounds):
        for label, path in arms:
            results[label].append(_arm(Path(path), ns))
    print(f"CPU µs per app_mention through bolt's dispatch and the adapter's listener ({ns.events} events)")
    for label, values in results.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(f"{label:>10}: median {statistics.median(values):6.1f}   rounds: {rounds}")


if __name__ == "__main__":
    main()
