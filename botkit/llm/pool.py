"""The model backends botkit sends requests to, and the fair queue in front of them.

One or more OpenAI-compatible servers (the supervised vLLM, the stand-in, external replicas or a
router) sit behind a :class:`BackendPool`. A request first takes a *slot*: a backend that is ready
and below its in-flight limit, with the user below theirs. Requests that cannot get one wait in a
FIFO line (a user at their own limit lets others pass), and the waiting reply is told its place,
so a burst queues fairly instead of timing out; while a supervised server starts, the waiting
reply is told again whenever the server's start-up phase changes and every ``wait_refresh``
seconds (the elapsed time). The limit per backend adapts to what vLLM's
``/metrics`` says: when the server itself starts queueing (``vllm:num_requests_waiting``) or its
KV cache is nearly full, botkit stops adding to it.

One health checker per backend. An external server is checked by the pool itself (``/health``,
then ``/metrics``, every ``health_interval``). A supervised server is checked by its supervisor
alone: the pool reads the supervisor's state and its last ``/health`` result (it is told of every
change through :meth:`BackendPool.on_supervisor_change`) and only reads ``/metrics`` itself. All
of it goes through the backend's one :class:`~botkit.llm.client.LLMClient` session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from botkit.llm.client import LLMClient
from botkit.llm.errors import BackendError

log = logging.getLogger("botkit.pool")

WaitReason = Literal["starting", "down", "busy"]
OnWait = Callable[[int, WaitReason], None]


class Supervised(Protocol):
    """What the pool needs of a supervisor, the one health checker of a supervised server.

    ``state`` ("starting", "ready", ...), ``last_error``, ``healthy`` (its last ``/health``
    answered 200), ``health_checks`` (how many ``/health`` requests it has made so far), and while
    it starts ``phase`` (what its log says it is doing, or None) and ``starting_since``
    (``time.monotonic()`` when it stopped serving; None when not starting).
    """

    @property
    def state(self) -> str: ...

    @property
    def last_error(self) -> str | None: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def health_checks(self) -> int: ...

    @property
    def phase(self) -> str | None: ...

    @property
    def starting_since(self) -> float | None: ...


@dataclass(frozen=True)
class Startup:
    """A supervised server on its way up, as a queued question is told: ``phase`` from its log
    (None until it says), ``since`` in ``time.monotonic()`` seconds."""

    phase: str | None
    since: float


@dataclass(eq=False)
class Backend:
    """One server. ``limit`` is the configured in-flight cap, ``capacity`` the one in force now.

    ``healthy`` is the pool's view: for an external server its last ``/health``; for a supervised
    one what the supervisor last found, unless a request failed to connect since
    (``down_at_check``: the supervisor's check count then; its next check decides).
    """

    client: LLMClient
    limit: int
    supervisor: Supervised | None = None
    healthy: bool = False
    down_at_check: int | None = None
    in_flight: int = 0
    server_waiting: float = 0.0
    kv_cache_usage: float = 0.0
    last_error: str | None = None
    served: int = 0

    @property
    def url(self) -> str:
        """The base URL as it may be shown (logs, /healthz, chat): without ``user:password@``."""
        return shown_url(self.client.base_url)

    @property
    def ready(self) -> bool:
        supervised_ready = self.supervisor is None or self.supervisor.state == "ready"
        return self.healthy and supervised_ready

    @property
    def state(self) -> str:
        if self.supervisor is not None and self.supervisor.state != "ready":
            return self.supervisor.state
        return "ready" if self.healthy else "unhealthy"

    @property
    def capacity(self) -> int:
        if self.server_waiting > 0 or self.kv_cache_usage >= 0.95:
            return max(1, min(self.limit, self.in_flight))  # the server is saturated: add nothing
        return self.limit


@dataclass(eq=False)
class _Waiter:
    user: str
    enqueued: float = field(default_factory=time.monotonic)


def shown_url(url: str) -> str:
    """``url`` without credentials, for logs, status pages and chat."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=f"***@{netloc}"))


class BackendPool:
    def __init__(
        self,
        backends: list[Backend],
        *,
        per_user: int = 2,
        queue_timeout: float = 300.0,
        max_queue: int = 500,
        health_interval: float = 5.0,
        adaptive: bool = True,
        wait_refresh: float = 5.0,
    ) -> None:
        """``wait_refresh``: how often a question waiting for a starting server is told again
        (its notice shows the time waited), besides whenever the start-up phase changes."""
        if not backends:
            raise ValueError("a pool needs at least one backend")
        self.backends = backends
        self.per_user = per_user
        self.queue_timeout = queue_timeout
        self.max_queue = max_queue
        self.health_interval = health_interval
        self.adaptive = adaptive
        self.wait_refresh = wait_refresh
        self._line: list[_Waiter] = []
        self._per_user: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._health_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.check_health()
        self._health_task = asyncio.create_task(self._health_loop(), name="botkit-backend-health")

    async def stop(self) -> None:
        """Stop checking. The clients stay open: whoever created them closes them, after the
        supervisor that shares them has stopped too (see :func:`botkit.llm.backends.start_backends`)."""
        if self._health_task is not None:
            self._health_task.cancel()
            await asyncio.wait([self._health_task])
            self._health_task = None

    def on_supervisor_change(self) -> None:
        """A supervisor's state or health changed: follow it at once, and wake the line."""
        for backend in self.backends:
            if backend.supervisor is not None:
                self._follow(backend, backend.supervisor)
        self.notify()

    def notify(self) -> None:
        """Something changed (a slot freed, a backend became ready): wake the line."""
        self._changed.set()
        self._changed = asyncio.Event()

    # -- the line ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def slot(self, user: str, on_wait: OnWait | None = None) -> AsyncIterator[Backend]:
        """Hold one request's place on a backend; waits in line (and says so) when needed.

        ``on_wait(position, reason)`` is called when the place or the reason changes, and while
        a server starts also when its phase changes and every ``wait_refresh`` seconds (the
        caller reads :meth:`startup` for what to show).
        """
        if len(self._line) >= self.max_queue:
            raise BackendError("overloaded", f"{len(self._line)} requests are already waiting")
        waiter = _Waiter(user)
        self._line.append(waiter)
        try:
            backend = await self._granted(waiter, on_wait)
        finally:
            if waiter in self._line:
                self._line.remove(waiter)
                self.notify()
        backend.in_flight += 1
        self._per_user[user] = self._per_user.get(user, 0) + 1
        try:
            yield backend
        finally:
            backend.in_flight -= 1
            backend.served += 1
            self._per_user[user] -= 1
            if not self._per_user[user]:
                del self._per_user[user]
            self.notify()

    async def _granted(self, waiter: _Waiter, on_wait: OnWait | None) -> Backend:
        """Wait in line until ``waiter`` is granted a backend, telling ``on_wait`` what changes."""
        deadline = time.monotonic() + self.queue_timeout
        told: tuple[int, WaitReason, str | None] | None = None
        told_at = 0.0
        while (backend := self._grant(waiter)) is None:
            if self.failed:
                raise BackendError(
                    "unavailable", f"the model server failed and is not restarting: {self.failure()}"
                )
            changed = self._changed
            position, reason = self._position(waiter), self._reason()
            startup = self.startup() if reason == "starting" else None
            now = time.monotonic()
            news = (position, reason, startup.phase if startup else None)
            if on_wait is not None and (
                told != news or (startup is not None and now - told_at >= self.wait_refresh)
            ):
                told, told_at = news, now
                on_wait(position, reason)
            remaining = deadline - now
            if remaining <= 0:
                raise self._gave_up(reason)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    changed.wait(), min(remaining, self.health_interval, self.wait_refresh)
                )
        return backend

    def _eligible(self) -> list[_Waiter]:
        return [w for w in self._line if self._per_user.get(w.user, 0) < self.per_user]

    def _grant(self, waiter: _Waiter) -> Backend | None:
        eligible = self._eligible()
        if not eligible or eligible[0] is not waiter:
            return None
        candidates = [b for b in self.backends if b.ready and b.in_flight < b.capacity]
        if not candidates:
            return None
        self._line.remove(waiter)
        self.notify()  # the next in line may be eligible now
        return min(candidates, key=lambda b: (b.in_flight, b.served))

    def _position(self, waiter: _Waiter) -> int:
        eligible = self._eligible()
        return eligible.index(waiter) + 1 if waiter in eligible else len(eligible) + 1

    def _reason(self) -> WaitReason:
        if any(b.ready for b in self.backends):
            return "busy"
        starting = any(
            b.supervisor is not None and b.supervisor.state in ("starting", "restarting")
            for b in self.backends
        )
        return "starting" if starting else "down"

    def startup(self) -> Startup | None:
        """The supervised server that has been starting the longest, if any is starting."""
        starting: list[Startup] = []
        for backend in self.backends:
            supervisor = backend.supervisor
            since = supervisor.starting_since if supervisor is not None else None
            if supervisor is not None and since is not None:
                starting.append(Startup(supervisor.phase, since))
        return min(starting, key=lambda s: s.since) if starting else None

    @property
    def failed(self) -> bool:
        """Every backend is a supervised server that failed for good (it is not restarting)."""
        return all(b.supervisor is not None and b.supervisor.state == "failed" for b in self.backends)

    def failure(self) -> str:
        """The supervisors' last errors: the cause and the server log's last lines."""
        return "; ".join(str(b.supervisor.last_error) for b in self.backends if b.supervisor)

    async def wait_failed(self) -> str:
        """Until :attr:`failed`; returns :meth:`failure`. For ``botkit chat``, which then exits,
        since nobody else is waiting on a server that will not start by itself."""
        while True:
            changed = self._changed
            if self.failed:
                return self.failure()
            await changed.wait()

    def _gave_up(self, reason: WaitReason) -> BackendError:
        waited = f"{self.queue_timeout:.0f}s"
        if reason != "busy":
            errors = "; ".join(b.last_error for b in self.backends if b.last_error) or "no error reported"
            return BackendError("unavailable", f"no model server became ready within {waited} ({errors})")
        return BackendError("overloaded", f"no free model server slot within {waited}")

    def tokenizer(self) -> LLMClient | None:
        """A client whose server can count prompt tokens now (a ready backend), if any."""
        ready = [b for b in self.backends if b.ready]
        return ready[0].client if ready else None

    def mark_down(self, backend: Backend, error: BackendError) -> None:
        """A request could not connect: take the backend out until a health check passes."""
        backend.healthy = False
        backend.last_error = error.detail or error.kind
        if backend.supervisor is not None:
            backend.down_at_check = backend.supervisor.health_checks
        log.warning("backend %s marked down: %s", backend.url, backend.last_error)
        self.notify()

    # -- health -----------------------------------------------------------------------------
    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            try:
                await self.check_health()
            except Exception:
                log.exception("backend health check failed")

    async def check_health(self) -> None:
        await asyncio.gather(*(self._check(b) for b in self.backends))
        self.notify()

    async def _check(self, backend: Backend) -> None:
        if backend.supervisor is not None:
            self._follow(backend, backend.supervisor)  # its supervisor checks /health, not the pool
        else:
            await self._check_external(backend)
        if backend.healthy and self.adaptive:
            await self._read_metrics(backend)

    def _follow(self, backend: Backend, supervisor: Supervised) -> None:
        """Take a supervised backend's health from its supervisor (the one checker)."""
        if supervisor.state != "ready" or not supervisor.healthy:
            backend.healthy = False
            backend.last_error = supervisor.last_error or (
                "/health did not answer 200" if supervisor.state == "ready" else None
            )
            return
        if backend.down_at_check is not None and supervisor.health_checks <= backend.down_at_check:
            return  # a request failed to connect after its last check: wait for the next one
        if not backend.healthy and backend.last_error is not None:
            log.info("backend %s is healthy again", backend.url)
        backend.healthy, backend.last_error, backend.down_at_check = True, None, None

    async def _check_external(self, backend: Backend) -> None:
        was = backend.healthy
        problem = await backend.client.health_problem()  # the client's short probe timeout
        backend.healthy = problem is None
        if backend.healthy != was:
            log.info(
                "backend %s is %s", backend.url, "healthy" if backend.healthy else "not answering /health"
            )
        if backend.healthy:
            backend.last_error = None
        else:
            backend.last_error = backend.last_error or problem

    async def _read_metrics(self, backend: Backend) -> None:
        metrics = await backend.client.metrics()
        if metrics is None:
            return
        backend.server_waiting = metrics.get("vllm:num_requests_waiting", 0.0)
        backend.kv_cache_usage = metrics.get("vllm:kv_cache_usage_perc", 0.0)

    # -- reporting --------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        return len(self._line)

    def status(self) -> dict[str, Any]:
        return {
            "ready": any(b.ready for b in self.backends),
            "waiting": len(self._line),
            "backends": [
                {
                    "url": b.url,
                    "state": b.state,
                    "in_flight": b.in_flight,
                    "capacity": b.capacity,
                    "served": b.served,
                    "server_waiting": b.server_waiting,
                    "kv_cache_usage": b.kv_cache_usage,
                    "last_error": b.last_error,
                }
                for b in self.backends
            ],
        }
