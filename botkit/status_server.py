"""botkit's own HTTP endpoint: ``/healthz`` (JSON) and ``/metrics`` (Prometheus) for probes.

``/healthz`` answers 200 when at least one model backend is ready and 503 otherwise, with the
same data ``botkit status`` prints: each backend's state, the supervised server's pid, uptime,
restarts and last error, requests in flight and waiting. Metrics are collected at scrape time
from the live objects, so there is no second bookkeeping to drift.

Final writes waiting for the database (answers shown, not yet stored) are in ``/healthz`` under
``database`` and make ``degraded`` true, but do not change ``ready`` or the status code: botkit
still answers, and a probe that restarted it or took it out of service would not bring the
database back, only move those writes from memory to the spool. Alert on ``degraded`` /
``botkit_database_pending_writes`` instead.

Turns left unsettled (``unsettled_turns`` per platform, ``botkit_unsettled_turns``): a gone
process was showing their final answer, and only their platform can tell whether it landed;
this process runs no adapter of it, so they wait for a start that does. They do not change
``ready`` either: start botkit with that platform's adapter to settle them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from botkit.config import ConfigError
from botkit.llm.pool import BackendPool
from botkit.llm.supervisor import VLLMSupervisor
from botkit.pipeline.recorder import WriteStatus

_STATES = ("starting", "ready", "restarting", "failed", "stopped", "unhealthy")


def health_report(
    pool: BackendPool,
    started: float,
    accepting: bool,
    writes: WriteStatus | None = None,
    unsettled: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    status = pool.status()
    for backend, entry in zip(pool.backends, status["backends"], strict=True):
        if isinstance(backend.supervisor, VLLMSupervisor):
            entry["supervisor"] = backend.supervisor.status()
    status["accepting"] = accepting
    status["uptime_seconds"] = round(time.monotonic() - started, 1)
    if writes is not None:
        status["database"] = writes.as_json()
        status["degraded"] = writes.pending > 0
    if unsettled is not None:
        status["unsettled_turns"] = dict(unsettled)
    return status


class _PoolCollector(Collector):
    def __init__(
        self,
        pool: BackendPool,
        turns: Callable[[], dict[str, int]],
        writes: Callable[[], WriteStatus] | None = None,
        unsettled: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.pool = pool
        self.turns = turns
        self.writes = writes
        self.unsettled = unsettled

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
        if self.writes is not None:
            yield from _write_metrics(self.writes())
        if self.unsettled is not None:
            left = GaugeMetricFamily(
                "botkit_unsettled_turns",
                "turns left for a start with their platform's adapter to settle",
                labels=["platform"],
            )
            for platform, count in sorted(self.unsettled().items()):
                left.add_metric([platform], count)
            yield left


def _write_metrics(writes: WriteStatus) -> Iterator[Any]:
    families: tuple[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, float], ...] = (
        (GaugeMetricFamily, "botkit_database_pending_writes",
         "final writes of shown answers waiting for the database", writes.pending),
        (GaugeMetricFamily, "botkit_database_oldest_pending_write_seconds",
         "how long the oldest pending final write has waited", writes.oldest_pending_seconds),
        (CounterMetricFamily, "botkit_database_writes_landed_late",
         "final writes stored after waiting for the database", writes.landed_late),
        (CounterMetricFamily, "botkit_database_writes_given_up",
         "final writes not stored within database.write_retry_timeout", writes.given_up),
    )  # fmt: skip
    for family, name, documentation, value in families:
        metric = family(name, documentation)
        metric.add_metric([], value)
        yield metric


class StatusServer:
    def __init__(
        self,
        pool: BackendPool,
        *,
        host: str,
        port: int,
        accepting: Callable[[], bool],
        turns: Callable[[], dict[str, int]],
        writes: Callable[[], WriteStatus] | None = None,
        unsettled: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.accepting = accepting
        self.writes = writes
        self.unsettled = unsettled
        self.started = time.monotonic()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_PoolCollector(pool, turns, writes, unsettled))
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
        writes = self.writes() if self.writes is not None else None
        unsettled = self.unsettled() if self.unsettled is not None else None
        report = health_report(self.pool, self.started, self.accepting(), writes, unsettled)
        return web.json_response(report, status=200 if report["ready"] else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain", charset="utf-8")
