"""Running ``vllm serve`` as a child of botkit: start, watch, restart, stop — never orphaned.

The child runs in its own process group and gets SIGTERM if botkit dies, even by SIGKILL (Linux
``PR_SET_PDEATHSIG``). Its exit is noticed the moment it happens (the exit itself, not the end
of its output, which its own children, vLLM's EngineCore and API servers, keep open), and the
server is not ready from then on. Whenever a server stops serving (an exit, a hang, botkit's own
stop), its whole process group is killed and the supervisor waits until none of it runs any
more before anything else starts: orphans would hold the port and the GPU memory. Ready means
``/health`` answers 200 *and* ``/v1/models`` lists the served model. An exit at any time is followed by a restart after an exponentially growing, jittered
delay; a live server whose ``/health`` fails ``hang_checks`` times in a row is hung and is
killed and restarted; more than ``max_restarts`` crashes within ``restart_window`` stop the
restarts, and the state says why in plain words, taken from the server's own log (CUDA out of
memory, port in use, model not found, unsupported GPU). Everything the server prints goes to a
rotating log file; errors are echoed to botkit's log.

The supervisor is the one health checker of its server: the pool in front of it reads
:attr:`VLLMSupervisor.state` and :attr:`VLLMSupervisor.healthy` (and is told of each change
through ``on_change``) instead of polling ``/health`` itself. Its requests go through the
server's :class:`~botkit.llm.client.LLMClient` session, the one the pool and the turns use; a
supervisor given no client makes one for itself and closes it when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from botkit.config import LLMSettings
from botkit.llm.client import LLMClient, client_for
from botkit.llm.startup_phase import phase_of

log = logging.getLogger("botkit.supervisor")

SupervisorState = Literal["stopped", "starting", "ready", "restarting", "failed"]
_STARTING: tuple[SupervisorState, ...] = ("starting", "restarting")

_OOM = "the GPU ran out of memory: lower llm.vllm.gpu_memory_utilization or llm.max_model_len"
_DIAGNOSES = (
    ("CUDA out of memory", _OOM),
    ("OutOfMemoryError", _OOM),
    ("less than desired GPU memory utilization", "another process holds GPU memory: free it or lower it"),
    ("Address already in use", "the port is taken: stop whatever listens there or change llm.vllm.port"),
    ("is not a valid model", "the model was not found: check llm.vllm.model"),
    ("Repository Not Found", "the model was not found: check llm.vllm.model"),
    ("No such file or directory: '/", "the model path was not found: check llm.vllm.model"),
    ("No CUDA GPUs are available", "no usable GPU: vLLM needs a CUDA GPU on this machine"),
    ("No module named 'vllm'", "vLLM is not installed for this Python: pip install -e '.[vllm]'"),
    ("compute capability", "this GPU is not supported by the installed vLLM build"),
)


_GROUP_POLL = 0.05  # seconds between checks that a stopped server's process group is gone


class BackendStartError(Exception):
    """The supervised model server cannot be started; the message says why and what to do."""


def served_base_url(settings: LLMSettings) -> str:
    """The ``/v1`` URL the supervised server listens on."""
    return f"http://127.0.0.1:{settings.vllm.port}/v1"


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


def _masked(command: list[str]) -> list[str]:
    """The command line as it may be logged: the value after ``--api-key`` is hidden."""
    shown = list(command)
    for i, part in enumerate(shown[:-1]):
        if part == "--api-key":
            shown[i + 1] = "***"
    return [("--api-key=***" if p.startswith("--api-key=") else p) for p in shown]


def diagnose(lines: list[str]) -> str | None:
    """The plain-words cause of a failure, from the newest log line that names one."""
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


class _ExitWatch(asyncio.subprocess.SubprocessStreamProtocol):
    """``create_subprocess_exec``'s protocol, plus :attr:`exited`: set the moment the process exits.

    ``Process.wait()`` returns only once the output pipe is closed as well, and a server's own
    children inherit that pipe: after vLLM's main process is killed, its EngineCore and API
    servers keep it open, and an exit seen through ``wait()`` goes unnoticed for as long as they
    live (while they may still answer ``/health``).
    """

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


def _group_running(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` still runs.

    A zombie does not count: it has released its memory, GPU and port, and only waits for its
    parent (init, for orphans; a slow or absent reaper in containers) to collect its status.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal is still a member
        return True
    proc = Path("/proc")
    if not proc.is_dir():  # no way to tell zombies apart: count them
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


async def _poll_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Until ``condition()`` holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_GROUP_POLL)
    return True


class VLLMSupervisor:
    def __init__(
        self,
        settings: LLMSettings,
        log_dir: str | Path | None = None,
        on_change: Callable[[], None] | None = None,
        client: LLMClient | None = None,
    ) -> None:
        """``client``: the server's shared client (its owner closes it); None: make one per start.

        ``on_change`` is called whenever :attr:`state` or :attr:`healthy` changes.
        """
        self.settings = settings
        self.vllm = settings.vllm
        self.base_url = served_base_url(settings)
        self.root_url = self.base_url.removesuffix("/v1")
        self.log_path = Path(log_dir or settings.vllm.log_dir) / "vllm.log"
        self.on_change = on_change
        self._given_client = client
        self.client = client
        self.process: asyncio.subprocess.Process | None = None
        self._exited = asyncio.Event()  # set the moment self.process exits (see _ExitWatch)
        self.state: SupervisorState = "stopped"
        self.healthy = False  # the last /health answered 200
        self.health_checks = 0  # /health requests made so far
        self.last_error: str | None = None
        self.restarts = 0
        self.started_at: float | None = None
        self._phase: str | None = None  # what the starting server's log says it is doing
        self._starting_since: float | None = None
        self.tail: deque[str] = deque(maxlen=80)
        self._crashes: deque[float] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._file_log = logging.getLogger(f"botkit.vllm.{id(self)}")
        self._file_log.propagate = False

    # -- public -----------------------------------------------------------------------------
    async def __aenter__(self) -> VLLMSupervisor:
        await self.start()
        await self.wait_ready()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Launch the server and keep it running in the background (returns at once)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(self.log_path, maxBytes=10_000_000, backupCount=3)
        self._file_log.handlers[:] = [handler]
        self._file_log.setLevel(logging.INFO)
        if self.client is None:
            self.client = client_for(self.settings, self.base_url)
        self._monitor = asyncio.create_task(self._supervise(), name="botkit-vllm-supervisor")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until the server is ready; :class:`BackendStartError` if it failed for good."""
        async with asyncio.timeout(timeout):
            while self.state != "ready":
                if self.state == "failed" or self._monitor is None or self._monitor.done():
                    raise BackendStartError(self.last_error or "the model server is not running")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._ready.wait()), 0.2)

    @property
    def phase(self) -> str | None:
        """While starting: what the server is doing, from its newest log line that says so
        (:mod:`botkit.llm.startup_phase`); None before such a line and when not starting."""
        return self._phase if self.state in _STARTING else None

    @property
    def starting_since(self) -> float | None:
        """While starting: since when (``time.monotonic()``) the server has not been serving,
        across the restarts of a crash loop, so a queued question's wait is counted whole."""
        return self._starting_since if self.state in _STARTING else None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def status(self) -> dict[str, Any]:
        uptime = time.monotonic() - self.started_at if self.started_at and self.state == "ready" else 0.0
        return {
            "state": self.state,
            "pid": self.pid,
            "uptime_seconds": round(uptime, 1),
            "restarts": self.restarts,
            "last_error": self.last_error,
            "phase": self.phase,
            "log": str(self.log_path),
        }

    async def stop(self) -> None:
        """Stop supervising, then SIGTERM the process group, SIGKILL it after ``stop_timeout``;
        returns once no process of the group runs any more."""
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.wait([self._monitor])
            self._monitor = None
        await self._kill(self.vllm.stop_timeout)
        for handler in self._file_log.handlers:
            handler.close()
        self._file_log.handlers.clear()
        if self.client is not None and self.client is not self._given_client:
            await self.client.aclose()
            self.client = None
        self._set_state("stopped")

    # -- the loop ---------------------------------------------------------------------------
    async def _supervise(self) -> None:
        try:
            await self._supervise_forever()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug here must not leave the state "starting" for ever
            log.exception("the model server supervisor failed")
            self.last_error = f"supervisor error: {type(err).__name__}: {err}"
            self._set_state("failed")

    async def _supervise_forever(self) -> None:
        backoff = self.vllm.backoff_initial
        while True:
            self._set_state("starting" if self.restarts == 0 else "restarting")
            try:
                await self._launch()
                await self._wait_until_ready()
            except BackendStartError as err:
                self.last_error = str(err)
                self._set_state("failed")
                log.error("model server cannot start: %s", err)
                await self._kill(self.vllm.stop_timeout)
                return
            except _Crash as crash:
                reason = str(crash)
            else:
                self.started_at = time.monotonic()
                backoff = self.vllm.backoff_initial
                self.last_error = None
                self._set_state("ready")
                reason = await self._watch()
                self._set_state("restarting")  # not ready from the moment it stopped serving
            await self._kill(self.vllm.stop_timeout)
            self._crashes.append(time.monotonic())
            while self._crashes and self._crashes[0] < time.monotonic() - self.vllm.restart_window:
                self._crashes.popleft()
            self.last_error = self._failure_message(reason)
            if len(self._crashes) > self.vllm.max_restarts:
                self.last_error = (
                    f"stopped restarting after {len(self._crashes)} crashes in "
                    f"{self.vllm.restart_window:.0f}s; last: {self.last_error}"
                )
                self._set_state("failed")
                log.error("model server failed for good: %s", self.last_error)
                return
            delay = min(self.vllm.backoff_max, backoff) * random.uniform(0.5, 1.0)
            backoff = min(self.vllm.backoff_max, backoff * 2)
            self.restarts += 1
            self._set_state("restarting")
            log.warning("model server %s; restart %d in %.1fs", reason, self.restarts, delay)
            await asyncio.sleep(delay)

    async def _launch(self) -> None:
        command = build_command(self.settings)
        log.info("starting model server: %s (log: %s)", " ".join(_masked(command)), self.log_path)
        self._phase = None
        loop = asyncio.get_running_loop()
        try:  # what create_subprocess_exec does, with a protocol that tells of the exit at once
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitWatch(limit=2**16, loop=loop),
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: we can stop all its workers
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError:
            configured = _masked(list(self.vllm.command))
            raise BackendStartError(
                f"cannot run {command[0]!r} (llm.vllm.command = {configured!r}): not found. "
                "Install vLLM on this GPU machine with pip install -e '.[vllm]', or set "
                'llm.vllm.command to where vllm is, or use llm.backend = "standin" (no GPU needed) '
                'or "external" (a vLLM server someone else runs)'
            ) from None
        except OSError as err:
            raise BackendStartError(f"cannot run {command[0]!r}: {err}; check llm.vllm.command") from None
        self.process = asyncio.subprocess.Process(transport, protocol, loop)
        self._exited = protocol.exited
        self._pump = asyncio.create_task(self._read_output(self.process))

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            self._file_log.info(line)
            phase = phase_of(line)
            if phase is not None and phase != self._phase:
                self._phase = phase
                self._changed()
            if "ERROR" in line or "Traceback" in line or diagnose([line]):
                log.warning("vllm: %s", line)

    async def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.vllm.startup_timeout
        last_progress = time.monotonic()
        while True:
            assert self.process is not None
            if self._exited.is_set():  # its last lines arrive once its group is killed (_kill)
                raise _Crash(f"exited with code {self.process.returncode} while starting")
            if await self._ready_check() and not self._exited.is_set():  # orphans may answer
                return
            now = time.monotonic()
            if now > deadline:
                raise _Crash(
                    f"was not ready after {self.vllm.startup_timeout:.0f}s "
                    "(raise llm.vllm.startup_timeout for slow first starts)"
                )
            if now - last_progress > 15:
                last_progress = now
                log.info("model server starting... last line: %s", self.tail[-1] if self.tail else "-")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 0.3)

    async def _ready_check(self) -> bool:
        if not await self._check_health():
            return False
        assert self.client is not None
        models = await self.client.served_models()
        return models is not None and self.settings.model in models

    async def _check_health(self, timeout: float | None = None) -> bool:
        """One ``GET /health`` (the only one anyone makes of this server); records the result."""
        assert self.client is not None
        healthy = await self.client.health(timeout)
        self.health_checks += 1
        if healthy != self.healthy:
            self.healthy = healthy
            self._changed()
        return healthy

    async def _watch(self) -> str:
        """While the server runs: returns why it stopped serving (exit, or hung and killed).

        The exit is awaited alongside every pause and ``/health`` check, so it ends the watch the
        moment it happens, even in the middle of a check (which orphaned API servers may still
        answer).
        """
        assert self.process is not None
        failures = 0
        exited = asyncio.create_task(self._exited.wait())
        check: asyncio.Task[bool] | None = None
        try:
            while True:
                check = asyncio.create_task(self._pause_then_check())
                await asyncio.wait({exited, check}, return_when=asyncio.FIRST_COMPLETED)
                if exited.done():
                    return f"exited with code {self.process.returncode}"
                failures = 0 if check.result() else failures + 1
                if failures >= self.vllm.hang_checks:
                    return f"is alive but /health failed {failures} times in a row (hung); killed it"
        finally:
            pending = [task for task in (exited, check) if task is not None and not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _pause_then_check(self) -> bool:
        await asyncio.sleep(self.vllm.health_interval)
        # A short timeout: a hung server must not look healthy.
        return await self._check_health(max(1.0, self.vllm.health_interval))

    async def _kill(self, timeout: float) -> None:
        """Stop the server's whole process group; return once none of it runs any more.

        A live server gets SIGTERM (to the group: it shuts its workers down) and ``timeout``
        seconds to exit; then, or at once if it had exited already, whatever is left of its group
        gets SIGKILL: its orphans, which would hold the port and the GPU memory the next server
        needs. ``self.process`` is cleared only when the group is gone, so a stop that cancels a
        kill half-way finishes it.
        """
        process = self.process
        if self.healthy:
            self.healthy = False
            self._changed()
        if process is not None:
            pgid = process.pid  # start_new_session: the server leads its own group
            if process.returncode is None:
                _signal_group(pgid, signal.SIGTERM)
                await _poll_until(lambda: self._exited.is_set() or not _group_running(pgid), timeout)
            _signal_group(pgid, signal.SIGKILL)
            if not await _poll_until(lambda: not _group_running(pgid), timeout):
                log.error(
                    "processes of the model server's group %d survived SIGKILL for %.0fs", pgid, timeout
                )
            with contextlib.suppress(TimeoutError):  # reaped, its pipe closed by the group's end
                await asyncio.wait_for(process.wait(), 2)
            self.process = None
        if self._pump is not None:  # its last lines: the pipe closed with the group
            await asyncio.wait([self._pump], timeout=2)
            self._pump.cancel()
            self._pump = None

    def _set_state(self, state: SupervisorState) -> None:
        if state != self.state:
            if state in _STARTING and self.state not in _STARTING:
                self._starting_since = time.monotonic()
            self.state = state
            if state == "ready":
                self._ready.set()
            else:
                self._ready.clear()
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _failure_message(self, what: str) -> str:
        lines = list(self.tail)
        cause = diagnose(lines)
        shown = "\n  ".join(lines[-15:]) or "(no output)"
        because = f": {cause}" if cause else ""
        return f"the model server {what}{because}.\nLast lines of {self.log_path}:\n  {shown}"


class _Crash(Exception):
    """The server stopped or never became ready; the supervisor decides whether to restart."""
