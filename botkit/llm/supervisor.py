"""Running ``vllm serve`` as a child of botkit: start, wait until ready, stop without orphans.

This is the first part of the supervisor (issue 3 carries the rest: restarts with backoff,
hang detection, crash-loop reporting, replicas). What is here already holds the invariants that
matter most: the child runs in its own process group and gets SIGTERM if botkit dies (Linux
``PR_SET_PDEATHSIG``), readiness means ``/health`` is 200 *and* ``/v1/models`` lists the served
model, and a start that fails says why in plain words, from the server's own log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections import deque
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

import aiohttp

from botkit.config import LLMSettings

log = logging.getLogger("botkit.supervisor")

_DIAGNOSES = (
    (
        "CUDA out of memory",
        "the GPU ran out of memory: lower llm.vllm.gpu_memory_utilization or llm.max_model_len",
    ),
    (
        "OutOfMemoryError",
        "the GPU ran out of memory: lower llm.vllm.gpu_memory_utilization or llm.max_model_len",
    ),
    (
        "less than desired GPU memory utilization",
        "another process holds GPU memory: free it or lower llm.vllm.gpu_memory_utilization",
    ),
    ("Address already in use", "the port is taken: stop whatever listens there or change llm.vllm.port"),
    ("is not a valid model", "the model was not found: check llm.vllm.model"),
    ("Repository Not Found", "the model was not found: check llm.vllm.model"),
    ("No CUDA GPUs are available", "no usable GPU: vLLM needs a CUDA GPU on this machine"),
    ("compute capability", "this GPU is not supported by the installed vLLM build"),
)


class BackendStartError(Exception):
    """The supervised model server did not become ready; the message says why and what to do."""


def build_command(settings: LLMSettings) -> list[str]:
    """The ``vllm serve`` command line, from configuration."""
    v = settings.vllm
    api_servers = v.api_server_count or max(1, min(4, (os.cpu_count() or 2) // 2))
    return [
        *v.command,
        v.model,
        "--served-model-name", settings.model,
        "--dtype", v.dtype,
        "--max-model-len", str(settings.max_model_len),
        "--gpu-memory-utilization", str(v.gpu_memory_utilization),
        "--tensor-parallel-size", str(v.tensor_parallel_size),
        "--reasoning-parser", "deepseek_r1",
        "--host", "127.0.0.1",
        "--port", str(v.port),
        "--stream-interval", str(v.stream_interval),
        "--api-server-count", str(api_servers),
        *v.extra_args,
    ]  # fmt: skip


def diagnose(lines: list[str]) -> str | None:
    for line in reversed(lines):
        lowered = line.lower()
        for needle, meaning in _DIAGNOSES:
            if needle.lower() in lowered:
                return meaning
    return None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class VLLMSupervisor:
    def __init__(self, settings: LLMSettings, log_dir: str | Path | None = None) -> None:
        self.settings = settings
        self.base_url = f"http://127.0.0.1:{settings.vllm.port}/v1"
        self.root_url = f"http://127.0.0.1:{settings.vllm.port}"
        self.log_path = Path(log_dir or "logs") / "vllm.log"
        self.process: asyncio.subprocess.Process | None = None
        self.state = "stopped"
        self.tail: deque[str] = deque(maxlen=60)
        self._pump: asyncio.Task[None] | None = None
        self._file_log = logging.getLogger(f"botkit.vllm.{id(self)}")

    async def __aenter__(self) -> VLLMSupervisor:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(self.log_path, maxBytes=10_000_000, backupCount=3)
        self._file_log.handlers[:] = [handler]
        self._file_log.propagate = False
        self._file_log.setLevel(logging.INFO)
        command = build_command(self.settings)
        log.info("starting model server: %s (log: %s)", " ".join(command), self.log_path)
        self.state = "starting"
        try:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError:
            self.state = "failed"
            raise BackendStartError(
                f"cannot run {command[0]!r}: not found. Install vLLM (pip install 'botkit[vllm]') or set "
                "llm.vllm.command, or use llm.backend = 'standin' / 'external'"
            ) from None
        self._pump = asyncio.create_task(self._read_output())
        await self._wait_ready()

    async def _read_output(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            self._file_log.info(line)
            if "ERROR" in line or "Traceback" in line or diagnose([line]):
                log.warning("vllm: %s", line)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.vllm.startup_timeout
        last_progress = 0.0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    if self._pump is not None:
                        await asyncio.wait([self._pump], timeout=2)
                    self.state = "failed"
                    raise BackendStartError(
                        self._failure_message(f"exited with code {self.process.returncode}")
                    )
                if await self._ready(http):
                    self.state = "ready"
                    log.info("model server ready at %s", self.base_url)
                    return
                now = time.monotonic()
                if now > deadline:
                    await self.stop()
                    self.state = "failed"
                    raise BackendStartError(
                        self._failure_message(
                            f"was not ready after {self.settings.vllm.startup_timeout:.0f}s "
                            "(raise llm.vllm.startup_timeout for slow first starts)"
                        )
                    )
                if now - last_progress > 15:
                    last_progress = now
                    log.info(
                        "waiting for the model server... last line: %s", self.tail[-1] if self.tail else "-"
                    )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.process.wait()), 0.5)

    async def _ready(self, http: aiohttp.ClientSession) -> bool:
        try:
            async with http.get(f"{self.root_url}/health") as response:
                if response.status != 200:
                    return False
            async with http.get(f"{self.base_url}/models") as response:
                if response.status != 200:
                    return False
                body = await response.json()
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return False
        return any(m.get("id") == self.settings.model for m in body.get("data", []))

    def _failure_message(self, what: str) -> str:
        lines = list(self.tail)
        cause = diagnose(lines)
        shown = "\n  ".join(lines[-15:]) or "(no output)"
        because = f": {cause}" if cause else ""
        return f"the model server {what}{because}.\nLast lines of {self.log_path}:\n  {shown}"

    async def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole process group, SIGKILL it if it does not go in ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if self._pump is not None:
            await asyncio.wait([self._pump], timeout=2)
            self._pump = None
        for handler in self._file_log.handlers:
            handler.close()
        self._file_log.handlers.clear()
        self.state = "stopped"
