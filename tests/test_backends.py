"""Model backends as users meet them: replicas, queues, a supervised server that starts and dies."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from polling import until

from botkit.llm.client import LLMClient, parse_metrics
from botkit.llm.pool import Backend, BackendPool
from botkit.llm.standin import forked_workers
from botkit.llm.supervisor import VLLMSupervisor
from botkit.testing import RecordingReply, Standin, TestBot

STANDIN = [sys.executable, "-m", "botkit.llm.standin"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _rows(bot: TestBot, thread: str = "thread-1") -> list[tuple[str, str]]:
    conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", thread)
    return [(m.status, m.content) for m in await bot.store.messages(conversation) if m.role == "assistant"]


async def test_two_replicas_one_dies_requests_fail_over_before_the_first_token(tmp_path: Path) -> None:
    async with Standin() as first, Standin() as second:
        settings = {"llm": {"base_urls": [first.base_url, second.base_url], "health_interval": 60}}
        async with TestBot(tmp_path, standin=first, settings=settings) as bot:
            await first.stop()  # dies after the health check said it was fine
            replies = [await bot.ask(f"question {i}", thread=f"t{i}") for i in range(3)]
            status = bot.app.pool.status()  # type: ignore[union-attr]
    assert all(r.error is None for r in replies)
    assert len(second.requests) == 3
    states = {b["url"]: b["state"] for b in status["backends"]}
    assert states == {first.base_url: "unhealthy", second.base_url: "ready"}


async def test_burst_queues_fairly_and_users_see_their_place_in_line(tmp_path: Path) -> None:
    standin = Standin(tokens_per_second=150)
    settings = {"llm": {"max_in_flight": 1}}
    async with TestBot(tmp_path, standin=standin, settings=settings) as bot:
        replies = [RecordingReply() for _ in range(3)]
        submissions = []
        for i, reply in enumerate(replies):
            message = bot.message(f"question {i}", user=f"user-{i}", thread=f"t{i}")
            submissions.append(await bot.bot.submit(message, reply))
        most = 0
        while not all(s.task is not None and s.task.done() for s in submissions):
            most = max(most, standin.running)
            await asyncio.sleep(0.01)
    assert most == 1  # never more than the backend's limit in flight
    assert all(r.error is None and "You asked" in r.text for r in replies)
    lines = [" ".join(c.text for c in r.calls) for r in replies]
    positions = sorted(n for text in lines for n in ("1", "2") if f"#{n} in line" in text)
    assert positions.count("1") >= 1 and "2" in positions  # the two who waited saw their places
    assert sum(1 for text in lines if "in line" not in text) == 1  # the first was served at once


async def test_per_user_limit_lets_other_users_pass(tmp_path: Path) -> None:
    standin = Standin(tokens_per_second=100)
    settings = {"llm": {"max_in_flight": 4, "max_in_flight_per_user": 1}}
    async with TestBot(tmp_path, standin=standin, settings=settings) as bot:
        greedy = [RecordingReply() for _ in range(3)]
        other = RecordingReply()
        subs = [
            await bot.bot.submit(bot.message(f"q{i}", user="greedy", thread=f"g{i}"), r)
            for i, r in enumerate(greedy)
        ]
        subs.append(await bot.bot.submit(bot.message("mine", user="other", thread="o"), other))
        await asyncio.gather(*(s.wait() for s in subs))
        order = [r["messages"][-1]["content"].strip().splitlines()[-1] for r in standin.requests]
    # The other user did not wait behind the burst: with one greedy question in flight at a time,
    # theirs is among the first two served (which greedy one goes first depends on the database).
    assert order.index("mine") <= 1, order
    assert all(r.error is None for r in [*greedy, other])


async def test_limits_adapt_to_what_vllm_reports(tmp_path: Path) -> None:
    async with (
        Standin(max_num_seqs=1, tokens_per_second=50) as standin,
        LLMClient(standin.base_url, standin.model_name) as client,
    ):
        pool = BackendPool([Backend(client, limit=8)], health_interval=60)
        await pool.start()
        try:
            backend = pool.backends[0]
            assert backend.capacity == 8

            async def ask() -> None:
                async with pool.slot("u") as b:
                    async for _ in b.client.stream(
                        [{"role": "user", "content": "hi"}], temperature=0.6, top_p=0.95, max_tokens=64
                    ):
                        pass

            tasks = [asyncio.create_task(ask()) for _ in range(3)]
            await standin.wait_for(lambda: standin.waiting >= 1, 10)
            await pool.check_health()
            assert backend.server_waiting >= 1
            assert backend.capacity == backend.in_flight  # saturated: add nothing more
            await asyncio.gather(*tasks)
            await pool.check_health()
            assert backend.capacity == 8
        finally:
            await pool.stop()


def test_metrics_parsing_sums_over_labels() -> None:
    text = (
        "# HELP vllm:num_requests_waiting x\n"
        'vllm:num_requests_waiting{engine="0",model_name="m"} 2.0\n'
        'vllm:num_requests_waiting{engine="1",model_name="m"} 3.0\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5\n'
    )
    assert parse_metrics(text) == {"vllm:num_requests_waiting": 5.0, "vllm:kv_cache_usage_perc": 0.5}


def _vllm_settings(port: int, **extra: object) -> dict[str, object]:
    vllm = {
        "command": STANDIN,
        "port": port,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "health_interval": 0.2,
    }
    return {"llm": {"backend": "vllm", "health_interval": 0.2, "vllm": {**vllm, **extra}}}


async def _served(root_url: str) -> dict[str, Any]:
    """What a stand-in in another process received: hits per route, routes per connection."""
    async with aiohttp.ClientSession() as http, http.get(root_url + "/standin/requests") as response:
        served: dict[str, Any] = await response.json()
        return served


def _shared(connections: list[list[str]], first: str, second: str) -> bool:
    """Some one connection carried both routes: their callers share one connection pool."""
    return any(first in routes and second in routes for routes in connections)


async def test_a_supervised_server_is_polled_by_its_supervisor_alone_through_one_session(
    tmp_path: Path,
) -> None:
    slow = ["--tokens-per-second", "25"]
    # The supervisor checks /health only while the server starts (then every 30 s); the pool
    # reads /metrics every 0.2 s: every /health after "ready" would be a second checker.
    logs = str(tmp_path / "logs")
    settings = _vllm_settings(_free_port(), log_dir=logs, health_interval=30, extra_args=slow)
    async with TestBot(tmp_path, settings=settings) as bot:
        assert bot.app is not None and bot.app.pool is not None
        backend = bot.app.pool.backends[0]
        supervisor = backend.supervisor
        assert isinstance(supervisor, VLLMSupervisor)
        await supervisor.wait_ready(timeout=60)
        assert backend.client is supervisor.client  # one client, so one session, per backend
        root = supervisor.root_url
        before = (await _served(root))["hits"]
        # Long enough to be counted by /tokenize (a short prompt is not: token_upper_bound).
        question = "What is 6*7? Take your time. " + "Please think it over. " * 100
        submission = await bot.bot.submit(bot.message(question), RecordingReply())
        await until(lambda: backend.kv_cache_usage > 0)  # the pool read the busy server's /metrics
        await submission.wait()
        served = await _served(root)
        while served["hits"]["GET /metrics"] < before.get("GET /metrics", 0) + 5:  # 5 more pool rounds
            await asyncio.sleep(0.1)
            served = await _served(root)
        checks = supervisor.health_checks
    assert served["hits"]["GET /health"] == before["GET /health"] <= checks
    assert served["hits"]["POST /tokenize"] >= 1
    connections = served["connections"]
    assert _shared(connections, "GET /health", "GET /metrics")  # supervisor and pool: one pool
    assert _shared(connections, "POST /tokenize", "GET /metrics")  # turns and pool: the same


async def test_the_pools_view_of_a_supervised_server_follows_its_supervisor(tmp_path: Path) -> None:
    settings = _vllm_settings(_free_port(), log_dir=str(tmp_path / "logs"), hang_checks=1000)
    settings["llm"]["health_interval"] = 60  # type: ignore[index]  # the pool's own round never comes
    async with TestBot(tmp_path, settings=settings) as bot:
        assert bot.app is not None and bot.app.pool is not None
        pool = bot.app.pool
        backend = pool.backends[0]
        supervisor = backend.supervisor
        assert isinstance(supervisor, VLLMSupervisor)
        await supervisor.wait_ready(timeout=60)
        assert backend.ready and pool.status()["backends"][0]["state"] == "ready"
        pid = supervisor.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # its /health stops answering: no request may go there
        try:
            await until(lambda: not supervisor.healthy)
            assert supervisor.state == "ready"  # not yet declared hung
            assert not backend.ready and pool.status()["backends"][0]["state"] == "unhealthy"
        finally:
            os.kill(pid, signal.SIGCONT)
        await until(lambda: supervisor.healthy)
        assert backend.ready
        os.kill(pid, signal.SIGKILL)
        await until(lambda: supervisor.state != "ready")
        assert not backend.ready and backend.state == supervisor.state
        await supervisor.wait_ready(timeout=60)
        assert backend.ready and pool.status()["backends"][0]["state"] == "ready"
        reply = await bot.ask("What is 2+2?")
    assert "The final answer is 4." in reply.text


# The supervised command in the next test: before it becomes the stand-in, it notes which
# processes of the previous server (their pids in PREVIOUS) are still running as it starts.
LAUNCHER = """
import json, os, sys
from pathlib import Path

starts, previous = Path(sys.argv[1]), Path(sys.argv[2])
pids = [int(p) for p in previous.read_text().split()] if previous.exists() else []

def running(pid):
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, OSError):
        return False

with starts.open("a") as out:
    out.write(json.dumps({"previous": len(pids), "running": [p for p in pids if running(p)]}) + "\\n")
os.execv(sys.executable, [sys.executable, "-m", "botkit.llm.standin", *sys.argv[3:]])
"""


async def test_a_killed_server_is_unready_at_once_and_its_orphans_are_gone_before_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_FORK_CHILDREN", "2")  # like vLLM's EngineCore + API server
    launcher, starts, previous = tmp_path / "launcher.py", tmp_path / "starts", tmp_path / "previous"
    launcher.write_text(LAUNCHER)
    command = [sys.executable, str(launcher), str(starts), str(previous)]
    # No /health poll comes within the test (every hour; the pool's /metrics every minute): only
    # the exit itself can tell the supervisor, and its workers keep the output pipe open.
    settings = _vllm_settings(
        _free_port(), log_dir=str(tmp_path / "logs"), command=command, health_interval=3600
    )
    settings["llm"]["health_interval"] = 60  # type: ignore[index]
    async with TestBot(tmp_path, settings=settings) as bot:
        assert bot.app is not None and bot.app.pool is not None
        pool = bot.app.pool
        supervisor = pool.backends[0].supervisor
        assert isinstance(supervisor, VLLMSupervisor)
        await supervisor.wait_ready(timeout=60)
        main, workers = supervisor.pid, forked_workers(supervisor.tail)
        assert main is not None and len(workers) == 2 and not any(_dead(w) for w in workers)
        previous.write_text(" ".join(map(str, [main, *workers])))
        seen: list[tuple[bool, str, int]] = []  # the pool's view at each change, old workers running
        follow = supervisor.on_change
        assert follow is not None

        def observe() -> None:
            follow()
            status = pool.status()
            seen.append((status["ready"], status["backends"][0]["state"], sum(not _dead(w) for w in workers)))

        supervisor.on_change = observe
        checks = supervisor.health_checks
        os.kill(main, signal.SIGKILL)  # the main process alone; its workers live on, orphaned
        await until(lambda: supervisor.state != "ready")
        assert supervisor.health_checks == checks  # noticed by the exit itself, not by a poll
        await supervisor.wait_ready(timeout=60)
        reply = await bot.ask("What is 2+2?")
        restarts = supervisor.restarts
    assert seen[0] == (False, "restarting", 2)  # unready before any of the old group was killed
    recorded = [json.loads(line) for line in starts.read_text().splitlines()]
    assert recorded == [{"previous": 0, "running": []}, {"previous": 3, "running": []}]
    assert all(_dead(pid) for pid in [main, *workers])
    assert restarts == 1
    assert "The final answer is 4." in reply.text


async def test_an_external_server_has_one_checker_and_one_session(tmp_path: Path) -> None:
    async with TestBot(tmp_path, settings={"llm": {"health_interval": 0.05}}) as bot:
        standin = bot.standin
        await bot.ask("hello " * 400)  # counted by /tokenize (a short prompt is not: token_upper_bound)
        tokenized = standin.hits["POST /tokenize"]
        await standin.wait_for(lambda: standin.hits["GET /metrics"] >= 10, 30)
        hits = dict(standin.hits)
        connections = list(standin.connections.values())
    assert tokenized >= 1
    assert 0 <= hits["GET /health"] - hits["GET /metrics"] <= 1  # one /health, one /metrics a round
    assert _shared(connections, "POST /tokenize", "GET /health") or _shared(
        connections, "POST /tokenize", "GET /metrics"
    )


async def test_question_asked_while_the_model_starts_is_queued_then_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_STARTUP_DELAY", "1.5")
    settings = _vllm_settings(_free_port(), log_dir=str(tmp_path / "logs"))
    async with TestBot(tmp_path, settings=settings) as bot:
        reply = await bot.ask("What is 2+2?")
        rows = await _rows(bot)
    shown = [c.text for c in reply.calls]
    assert any(
        re.search(r"The model is starting \(.*\d+ s\); your question is queued \(#1 in line\)", t)
        for t in shown
    )
    assert "The final answer is 4." in reply.text
    assert rows[0][0] == "complete"


async def test_server_killed_mid_stream_interrupts_visibly_then_answers_in_place(tmp_path: Path) -> None:
    slow = ["--tokens-per-second", "25"]  # the stand-in playing vLLM streams slowly enough to cut
    settings = _vllm_settings(_free_port(), log_dir=str(tmp_path / "logs"), extra_args=slow)
    async with TestBot(tmp_path, settings=settings) as bot:
        supervisor = bot.app.pool.backends[0].supervisor  # type: ignore[union-attr]
        await supervisor.wait_ready(timeout=60)  # type: ignore[union-attr]
        reply = RecordingReply()
        submission = await bot.bot.submit(bot.message("Tell me about 17*23, slowly"), reply)
        for _ in range(400):
            if "To compute" in reply.text:  # the answer is streaming
                break
            await asyncio.sleep(0.02)
        os.kill(supervisor.pid, signal.SIGKILL)  # type: ignore[union-attr]
        await submission.wait()
        rows = await _rows(bot)
        restarts = supervisor.restarts  # type: ignore[union-attr]
    shown = [c.text for c in reply.calls]
    assert any("Interrupted: the model server stopped" in t for t in shown), shown
    assert [c.method for c in reply.calls].count("post_placeholder") == 1
    assert "The final answer is 391." in reply.text
    assert restarts == 1
    assert rows[0][0] == "complete"


async def test_status_endpoint_and_cli(tmp_path: Path) -> None:
    port = _free_port()
    settings = {"server": {"enabled": True, "port": port}}
    async with TestBot(tmp_path, settings=settings) as bot:
        await bot.ask("hello")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                health = await response.json()
                code = response.status
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "botkit.cli", "status", "--url", f"http://127.0.0.1:{port}/healthz"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert code == 200
    assert health["ready"] is True and health["backends"][0]["state"] == "ready"
    assert f'botkit_backend_up{{url="{bot.standin.base_url}"}} 1.0' in metrics
    assert 'botkit_turns_total{status="complete"} 1.0' in metrics
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("ready:")
    down = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "botkit.cli", "status", "--url", f"http://127.0.0.1:{port}/healthz"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert down.returncode == 2 and "no botkit answering" in down.stderr


async def test_crash_looping_server_gets_users_a_clear_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_EXIT_AT_START", "1")
    settings = _vllm_settings(_free_port(), log_dir=str(tmp_path / "logs"), max_restarts=1)
    async with TestBot(tmp_path, settings=settings) as bot:
        reply = await bot.ask("anyone?")
        rows = await _rows(bot)
        supervisor = bot.app.pool.backends[0].supervisor  # type: ignore[union-attr]
        state, last_error = supervisor.state, supervisor.last_error  # type: ignore[union-attr]
    assert "not reachable" in reply.text
    assert rows[0][0] == "failed"
    assert state == "failed"
    assert "stopped restarting after 2 crashes" in (last_error or "")


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
async def test_stopping_botkit_leaves_no_model_server(tmp_path: Path, how: signal.Signals) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update(
        {
            "BOTKIT_LLM__BACKEND": "vllm",
            "BOTKIT_LLM__VLLM__COMMAND": str(STANDIN).replace("'", '"'),
            "BOTKIT_LLM__VLLM__PORT": str(port),
            "BOTKIT_STANDIN_FORK_CHILDREN": "2",  # the server's own workers, as vLLM has
        }
    )
    botkit = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "chat", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        children: list[int] = []
        for _ in range(600):
            children = _children(botkit.pid)
            if children:
                async with aiohttp.ClientSession() as http:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/health") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
            await asyncio.sleep(0.1)
        assert children, "botkit started no model server"
        workers = [w for child in children for w in _children(child)]
        assert len(workers) == 2 * len(children)
        botkit.send_signal(how)
        await asyncio.wait_for(botkit.wait(), 60)
        for child in children + workers:
            for _ in range(200):
                if _dead(child):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"model server {child} outlived botkit after {how.name}")
    finally:
        if botkit.returncode is None:
            botkit.kill()
            await botkit.wait()


async def test_hung_server_mid_stream_is_restarted_and_the_reply_completes(tmp_path: Path) -> None:
    slow = ["--tokens-per-second", "25"]
    settings = _vllm_settings(
        _free_port(), log_dir=str(tmp_path / "logs"), extra_args=slow, hang_checks=2, stop_timeout=1
    )
    async with TestBot(tmp_path, settings=settings) as bot:
        supervisor = bot.app.pool.backends[0].supervisor  # type: ignore[union-attr]
        await supervisor.wait_ready(timeout=60)  # type: ignore[union-attr]
        reply = RecordingReply()
        submission = await bot.bot.submit(bot.message("What is 6*7? Take your time."), reply)
        for _ in range(400):
            if "To compute" in reply.text:
                break
            await asyncio.sleep(0.02)
        hung = supervisor.pid  # type: ignore[union-attr]
        os.kill(hung, signal.SIGSTOP)  # alive but silent: the stream stalls, /health fails
        await submission.wait()
        rows = await _rows(bot)
        restarts = supervisor.restarts  # type: ignore[union-attr]
    shown = [c.text for c in reply.calls]
    assert any("Interrupted: the model server stopped" in t for t in shown)
    assert "The final answer is 42." in reply.text
    assert restarts == 1
    assert rows[0][0] == "complete"


def test_credentials_in_backend_urls_are_never_shown() -> None:
    from botkit.llm.pool import shown_url

    assert shown_url("http://user:s3cret@vllm.internal:8000/v1") == "http://***@vllm.internal:8000/v1"
    assert shown_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
