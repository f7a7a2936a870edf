"""A restart that cannot read the platform a killed turn was on: a real ``botkit run`` SIGKILLed
while a Slack reply's final edit is in flight (applied: the user saw the complete answer, the
database does not know it), then started with the console adapter only. That start cannot tell
whether the answer was shown, so it leaves the turn and its intent for a start that can, says so
once, shows it in ``/healthz`` and ``/metrics``, and answers its own questions meanwhile; the
start with Slack back stores it complete from what Slack shows (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from subprocesses import free_port
from test_slack_crash_windows import (
    ANSWER,
    THINKING,
    _assistant,
    _killed_at_the_final_edit,
    _pending,
    _restart,
)

from botkit.testing import Standin
from botkit.testing.fake_slack import FakeSlack

pytestmark = pytest.mark.timeout(150)

SETTLE_HINT = "start botkit with the slack adapter to settle them"


def _heartbeats(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {str(r[0]) for r in db.execute("SELECT heartbeat_at FROM workers")}


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[dict[str, Any] | None, str]:
    """/healthz's JSON and /metrics' text (None, "" while the server is not up yet)."""
    try:
        async with http.get(f"{url}/healthz") as health:
            report: dict[str, Any] = await health.json()
        async with http.get(f"{url}/metrics") as metrics:
            return report, await metrics.text()
    except aiohttp.ClientError:
        return None, ""


async def _console_only_start(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, Any], str, str, str]:
    """``botkit run`` with the console adapter only (Slack off), its sweep every 0.2 s: once
    ``/healthz`` answers, ask it a question on stdin (its restart pass ran before the console
    reads), wait for the answer and a few heartbeats (sweeps), read ``/healthz`` and
    ``/metrics``, then end its input. Its report, metrics, stdout and log."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "run", cwd=tmp_path,
        env=env | {
            "BOTKIT_BOT__ADAPTERS": '["console"]', "BOTKIT_SERVER__ENABLED": "true",
            "BOTKIT_SERVER__PORT": str(port), "BOTKIT_DATABASE__HEARTBEAT_INTERVAL": "0.2",
        },
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while (await _get(http, f"http://127.0.0.1:{port}"))[0] is None:  # noqa: ASYNC110 - polling /healthz
                await asyncio.sleep(0.1)
            process.stdin.write(b"What is 17*23?\n")
            await process.stdin.drain()
            answer = (await process.stdout.readline()).decode()
            seen = _heartbeats(tmp_path / "botkit.db")
            while len(seen) < 4:  # a few sweeps have run since (one per heartbeat interval)
                await asyncio.sleep(0.05)
                seen |= _heartbeats(tmp_path / "botkit.db")
            report, metrics = await _get(http, f"http://127.0.0.1:{port}")
            assert report is not None
        process.stdin.close()
        out, log = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return report, metrics, answer + out.decode(), log.decode()


async def test_final_view_in_flight_then_a_start_without_slack_leaves_it_for_a_start_with_slack(
    tmp_path: Path,
) -> None:
    database = tmp_path / "botkit.db"
    async with FakeSlack() as slack, Standin(tokens_per_second=15) as standin:
        env, replies = await _killed_at_the_final_edit(tmp_path, slack, standin, applied=True)
        ((status, checkpoint),) = _assistant(database)
        assert status == "streaming" and checkpoint != ANSWER
        (intent,) = [p.read_bytes() for p in _pending(tmp_path)]
        await slack.wait_for(lambda: not slack.sockets, 30)

        report, metrics, out, log = await _console_only_start(tmp_path, env)
        # Untouched: the row still unfinished with its checkpoint, the intent still spooled, the
        # message as the user saw it (complete), nothing read from or sent to Slack.
        assert _assistant(database)[0] == ("streaming", checkpoint)
        assert [p.read_bytes() for p in _pending(tmp_path)] == [intent]
        (message,) = replies()
        assert message.history == [THINKING, ANSWER]
        assert report.get("unsettled_turns") == {"slack": 1}
        assert 'botkit_unsettled_turns{platform="slack"} 1.0' in metrics
        assert "391" in out  # its own questions are answered meanwhile
        warnings = [line for line in log.splitlines() if "left unsettled" in line]
        assert len(warnings) == 1, log[-3000:]  # once, not at every sweep
        assert " WARNING " in warnings[0] and "1 turn(s) on slack" in warnings[0]
        assert SETTLE_HINT in warnings[0]

        log_b = await _restart(tmp_path, slack, env, lambda: _assistant(database)[0][0] == "complete")
    (message,) = replies()
    assert message.history == [THINKING, ANSWER], log_b.decode()[-3000:]  # never edited
    assert _assistant(database)[0] == ("complete", ANSWER)
    assert _pending(tmp_path) == []
    assert not any("Interrupted" in v for v in message.history)
