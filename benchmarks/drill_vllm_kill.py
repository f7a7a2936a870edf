"""SIGKILL the supervised model server's main process and time what botkit's supervisor does.

Issue 12, item 7: when ``vllm serve``'s main process dies, the supervisor must notice at once
(not when the output pipe closes), mark the backend not ready, kill the whole process group (the
EngineCore and API-server processes vLLM forks keep running otherwise) and only then start the
new server. This drill measures exactly that, from outside the supervisor's own bookkeeping:

- ``noticed_s``: from the SIGKILL to the supervisor's state leaving ``ready`` (what ``/healthz``
  reports);
- ``group_gone_s``: from the SIGKILL until no process of the old process group runs (read from
  ``/proc``, zombies counted as gone);
- ``relaunched_s``: until a new main process exists, and whether any old group member was still
  alive at that moment (``orphans_at_relaunch``: must be 0);
- ``ready_again_s``: until the new server is ready.

Here it runs against botkit's stand-in forking workers the way vLLM does::

    python benchmarks/drill_vllm_kill.py --standin-workers 4

On the GPU machine, against the real server (the command and model as in ../shared/gpu/README.md)::

    python benchmarks/drill_vllm_kill.py --command python3 -m vllm.entrypoints.cli.main serve \\
        --model /tmp/model --extra-args "--load-format dummy" --api-server-count 4 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from botkit.config import LLMSettings
from botkit.llm.supervisor import VLLMSupervisor


def process_group(pgid: int) -> list[int]:
    """The live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return sorted(members)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(args: argparse.Namespace) -> LLMSettings:
    vllm: dict[str, Any] = {
        "command": args.command,
        "model": args.model,
        "port": args.port or _free_port(),
        "extra_args": shlex.split(args.extra_args),
        "startup_timeout": args.startup_timeout,
        "health_interval": 1.0,
        "backoff_initial": 0.0,
        "log_dir": args.log_dir,
    }
    if args.api_server_count is not None:
        vllm["api_server_count"] = args.api_server_count
    return LLMSettings.model_validate({"backend": "vllm", "vllm": vllm})


async def _until(predicate: Any, timeout: float, interval: float = 0.005) -> float | None:
    """Seconds until ``predicate()`` held (polled every ``interval``), None if it never did."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        await asyncio.sleep(interval)
    return None


async def drill(args: argparse.Namespace) -> dict[str, Any]:
    supervisor = VLLMSupervisor(_settings(args))
    started = time.monotonic()
    await supervisor.start()
    try:
        await supervisor.wait_ready(timeout=args.startup_timeout)
        cold_start = time.monotonic() - started
        assert supervisor.process is not None
        main_pid = supervisor.process.pid
        old_group = process_group(os.getpgid(main_pid))
        os.kill(main_pid, signal.SIGKILL)
        killed = time.monotonic()
        noticed = await _until(lambda: supervisor.state != "ready", 30)
        orphans_at_relaunch: list[int] | None = None

        def relaunched() -> bool:
            nonlocal orphans_at_relaunch
            pid = supervisor.pid
            if pid is None or pid == main_pid:
                return False
            orphans_at_relaunch = [p for p in old_group if _alive(p)]
            return True

        group_gone_task = asyncio.ensure_future(_until(lambda: not _alive_any(old_group), 120))
        relaunch = await _until(relaunched, 120)
        group_gone = await group_gone_task
        ready_again = await _until(lambda: supervisor.state == "ready", args.startup_timeout, 0.05)
        elapsed = time.monotonic() - killed
        return {
            "command": " ".join(args.command),
            "cold_start_s": round(cold_start, 2),
            "old_group_size": len(old_group),
            "noticed_s": _r(noticed),
            "group_gone_s": _r(group_gone),
            "relaunched_s": _r(relaunch),
            "orphans_at_relaunch": len(orphans_at_relaunch or []),
            "ready_again_s": _r(ready_again),
            "restarts": supervisor.restarts,
            "elapsed_s": round(elapsed, 2),
        }
    finally:
        await supervisor.stop()


def _alive_any(pids: list[int]) -> bool:
    return any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--command", nargs="+", default=[sys.executable, "-m", "botkit.llm.standin"])
    parser.add_argument("--model", default="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    parser.add_argument("--extra-args", default="")
    parser.add_argument("--api-server-count", type=int)
    parser.add_argument("--port", type=int)
    parser.add_argument("--standin-workers", type=int, default=0, help="stand-in: fork N workers like vLLM")
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--log-dir", default=tempfile.mkdtemp(prefix="botkit-drill-"))
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    if args.standin_workers:
        os.environ["BOTKIT_STANDIN_FORK_CHILDREN"] = str(args.standin_workers)
    result = asyncio.run(drill(args))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = result["noticed_s"] is not None and result["orphans_at_relaunch"] == 0 and result["ready_again_s"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
