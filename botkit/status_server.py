"""botkit's own HTTP endpoint: ``/healthz`` (JSON) and ``/metrics`` (Prometheus) for probes.

``/healthz`` answers 200 when at least one model backend is ready and 503 otherwise, with the
same data ``botkit status`` prints: each backend's state, the supervised server's pid, uptime,
restarts and last error, requests in flight and waiting. Metrics are collected at scrape time
from the live objects, so there is no second bookkeeping to drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from botkit.config import ConfigError
from botkit.llm.pool import BackendPool
from botkit.llm.supervisor import VLLMSupervisor

_STATES = ("starting", "ready", "restarting", "failed", "stopped", "unhealthy")


def health_report(pool: BackendPool, started: float, accepting: bool) -> dict[str, Any]:
    status = pool.status()
    for backend, entry in zip(pool.backends, status["backends"], strict=True):
        if isinstance(backend.supervisor, VLLMSupervisor):
            entry["supervisor"] = backend.supervisor.status()
    status["accepting"] = accepting
    status["uptime_seconds"] = round(time.monotonic() - started, 1)
    return status


class _PoolCollector(Collector):
    def __init__(self, pool: BackendPool, turns: Callable[[], dict[str, int]]) -> None:
        self.pool = pool
        self.turns = turns

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("botkit_backend_up", "1 if the backend is ready for requests", labels=["url"])
        state = GaugeMetricFamily("botkit_backend_state", "current backend state", labels=["url", "state"])
        in_flight = GaugeMetricFamily(
            "botkit_backend_requests_in_flight", "requests in flight", labels=["url"]
        )
        capacity = GaugeMetricFamily("botkit_backend_capacity", "in-flight limit in force", labels=["url"])
        restarts = CounterMetricFamily(
            "botkit_backend_restarts", "supervised server restarts", labels=["url"]
        )
        for backend in self.pool.backends:
            up.add_metric([backend.url], 1.0 if backend.ready else 0.0)
            for name in _STATES:
                state.add_metric([backend.url, name], 1.0 if backend.state == name else 0.0)
            in_flight.add_metric([backend.url], backend.in_flight)
            capacity.add_metric([backend.url], backend.capacity)
            count = backend.supervisor.restarts if isinstance(backend.supervisor, VLLMSupervisor) else 0
            restarts.add_metric([backend.url], count)
        yield from (up, state, in_flight, capacity, restarts)
        waiting = GaugeMetricFamily("botkit_requests_waiting", "questions waiting for a model slot")
        waiting.add_metric([], self.pool.waiting)
        yield waiting
        turns = CounterMetricFamily("botkit_turns", "finished turns by status", labels=["status"])
        for status, count in sorted(self.turns().items()):
            turns.add_metric([status], count)
        yield turns


class StatusServer:
    def __init__(
        self,
        pool: BackendPool,
        *,
        host: str,
        port: int,
        accepting: Callable[[], bool],
        turns: Callable[[], dict[str, int]],
    ) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.accepting = accepting
        self.started = time.monotonic()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_PoolCollector(pool, turns))
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                f"cannot serve /healthz and /metrics on {self.host}:{self.port} ({err.strerror or err}); "
                "set [server] port (BOTKIT_SERVER__PORT) or [server] enabled = false"
            ) from None
        sockets = getattr(site._server, "sockets", None) or []  # the bound port when port=0
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        report = health_report(self.pool, self.started, self.accepting())
        return web.json_response(report, status=200 if report["ready"] else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain", charset="utf-8")
