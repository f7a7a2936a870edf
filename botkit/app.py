"""One lifespan that owns start-up, serving and shutdown.

Start-up order matters for "nothing lost": the backend and the database come up first, this
process registers as a worker, final writes a killed process left waiting for the database are
stored, turns it left unfinished are marked interrupted (their messages are repaired once the
adapters are checked; only those of processes that are gone: see :mod:`botkit.leftovers`), personas and
plugins are validated, every adapter checks its credentials, and only then does any adapter
accept a message. Shutdown runs the other way, and this lifespan alone drains: the router stops
accepting, replies in flight get ``bot.shutdown_grace`` seconds to finish through the still-open
platform connections (the rest are edited to say they were interrupted), then the adapters stop,
then plugins, the database and the model server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Collection, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from botkit.adapter import Adapter
from botkit.admin_notices import AdminNotifier
from botkit.audit import PersonaAuditor
from botkit.config import ConfigError, Settings, section
from botkit.dbconfig import open_configured_store
from botkit.leftovers import (
    HeartbeatWatch,
    Leftover,
    gone_on_this_host,
    new_worker_id,
    settle_abandoned,
)
from botkit.llm.backends import choose_backend, start_backends
from botkit.llm.pool import BackendPool, shown_url
from botkit.persona_refs import misspelt_platforms, unknown_persona_references
from botkit.personas import PersonaRegistry, shipped_personas_dir
from botkit.pipeline.chain import MiddlewareChain
from botkit.pipeline.filters import TextFilters
from botkit.pipeline.router import Router
from botkit.pipeline.turns import TurnRunner
from botkit.plugins.api import Plugin, PluginContext
from botkit.plugins.loader import available_adapters, load_adapter_class, load_plugins, plugin_config
from botkit.repair import leave_unread, repair_leftover, settle_unread
from botkit.retention import RetentionPolicy, run_retention
from botkit.store import ConversationStore
from botkit.store.records import WorkerRecord
from botkit.store.spool import WriteSpool
from botkit.streaming.budget import BudgetRegistry

if TYPE_CHECKING:
    from botkit.status_server import StatusServer  # imported when served: prometheus_client

log = logging.getLogger("botkit.app")

_BACKEND_ANNOUNCEMENTS = {
    "standin": "built-in vLLM stand-in (no GPU/vLLM here): canned answers, not a real model",
    "vllm": "supervised vLLM (starting; questions asked meanwhile are queued)",
    "external": "external server",
}


def announce_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class BotApp:
    def __init__(
        self,
        settings: Settings,
        *,
        extra_plugins: Sequence[Plugin[Any]] = (),
        announce: Callable[[str], None] = announce_to_stderr,
        status_server: bool = False,
    ) -> None:
        """``status_server``: serve ``/healthz`` and ``/metrics`` unless ``[server] enabled`` says."""
        self.settings = settings
        self.serve_status = settings.server.enabled if settings.server.enabled is not None else status_server
        self.status_server: StatusServer | None = None
        self.leftovers: list[Leftover] = []
        #: Turns left unsettled for a start that serves their platform (turn id -> platform):
        #: their final view may have been shown, and no adapter here can read it (botkit.repair).
        self.unsettled: dict[int, str] = {}
        self.unmarked_tried: set[int] = set()  # turns whose unmarked streams this process tried to mark
        self.spool: WriteSpool | None = None
        self.extra_plugins = list(extra_plugins)
        self.announce = announce
        self._stack = AsyncExitStack()
        self.pool: BackendPool | None = None
        self.bot: Router | None = None
        self.plugin_contexts: list[PluginContext[Any]] = []

    async def __aenter__(self) -> BotApp:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.bot is not None:
                await self.bot.drain(self.settings.bot.shutdown_grace)
            for ctx in reversed(self.plugin_contexts):
                for hook in ctx.plugin.shutdown_hooks:
                    try:
                        await hook(ctx)
                    except Exception:
                        log.exception("shutdown hook of plugin %s failed", ctx.plugin.name)
        finally:
            await self._stack.aclose()

    async def _start(self) -> None:
        settings = self.settings
        kind = choose_backend(settings.llm)
        urls = settings.llm.base_urls or [settings.llm.base_url]
        where = ", ".join(shown_url(u) for u in urls) if kind == "external" else ""
        self.announce(f"botkit: model backend: {_BACKEND_ANNOUNCEMENTS[kind]} {where}".rstrip())
        self.pool, description = await start_backends(settings.llm, self._stack)
        log.info("model backend: %s", description)
        store = await self._open_store()
        plugins = load_plugins(settings, self.extra_plugins)
        configs = {p.name: plugin_config(settings, p) for p in plugins}
        personas, auditor = await self._load_personas(plugins, store)
        self.plugin_contexts = [PluginContext(p, configs[p.name], personas) for p in plugins]
        turns = TurnRunner(
            store=store,
            pool=self.pool,
            settings=settings,
            budgets=BudgetRegistry(),
            filters=TextFilters([f for p in plugins for f in p.text_filters]),
        )
        self.bot = Router(
            settings=settings,
            store=store,
            turns=turns,
            personas=personas,
            plugins=plugins,
            plugin_configs=configs,
            chain=MiddlewareChain.of(self.plugin_contexts),
        )
        bot = settings.bot
        auditor.notify = AdminNotifier(bot.admin_channels, bot.admin_dm_users, self.bot.access)
        for ctx in self.plugin_contexts:
            for hook in ctx.plugin.startup_hooks:
                await hook(ctx)
        if self.serve_status:
            await self._start_status_server(self.pool, self.bot)

    async def _open_store(self) -> ConversationStore:
        """The database, crash leftovers marked interrupted, the hourly delivery-id pruner, and
        the ``[retention]`` task when one is configured."""
        database = self.settings.database
        store = await open_configured_store(database)
        self._stack.push_async_callback(store.close)
        # This process, registered before it writes any row (they carry its id), retired at a
        # clean stop after the drain; the turns of processes that are gone are settled now and
        # repaired on the platform once the adapters are checked (see botkit.leftovers).
        worker_id = new_worker_id()  # tagged: a later restart knows its turns (started_by_older)
        await store.register_worker(worker_id, host=socket.gethostname(), pid=os.getpid())
        self._stack.push_async_callback(_retire, store)
        spool = self.spool = WriteSpool.for_database(store.url, database.pending_writes_dir)
        self.leftovers, gone = await settle_abandoned(
            store, spool, lambda workers: gone_on_this_host(workers, worker_id), ownerless=True, strays=True
        )
        await store.forget_workers(gone)
        beating = asyncio.create_task(_heartbeat(store, database.heartbeat_interval), name="botkit-heartbeat")
        self._stack.push_async_callback(_cancel, beating)
        pruner = asyncio.create_task(
            _prune_deliveries(
                store,
                timedelta(hours=database.delivery_retention_hours),
                timedelta(days=database.audit_retention_days),
            ),
            name="botkit-delivery-pruner",
        )
        self._stack.push_async_callback(_cancel, pruner)
        policy = RetentionPolicy.from_settings(self.settings.retention)
        if policy is not None:  # [retention]: old turns removed now and every interval
            retention = asyncio.create_task(run_retention(store, policy), name="botkit-retention")
            self._stack.push_async_callback(_cancel, retention)
        return store

    async def _load_personas(
        self, plugins: Sequence[Plugin[Any]], store: ConversationStore
    ) -> tuple[PersonaRegistry, PersonaAuditor]:
        """Every persona file, checked (no persona or no default stops start-up), then watched;
        every load and reload is audited and each version's text stored (:class:`PersonaAuditor`)."""
        settings = self.settings
        personas = PersonaRegistry(
            settings.personas.dir or shipped_personas_dir(),
            extra_variables=[v for p in plugins for v in p.variables],
            max_file_bytes=settings.personas.max_file_bytes,
        )
        for error in personas.load():
            log.error("persona file not loaded: %s", error)
        if not personas.names():
            raise ConfigError(
                f"no usable persona in {personas.directory} ([personas] dir, BOTKIT_PERSONAS__DIR): "
                + ("; ".join(str(error) for error in personas.errors[:3]) or "no persona files (*.md) found")
                + "; run `botkit personas check`"
            )
        if personas.get(settings.personas.default) is None:
            raise ConfigError(
                f"[personas] default = {settings.personas.default!r}, but no such persona is loaded "
                f"(loaded: {', '.join(personas.names())})"
            )
        files = set(personas.names()) | {error.path.stem for error in personas.errors}
        unknown = unknown_persona_references(settings, files)
        unknown += misspelt_platforms(settings, available_adapters())
        if unknown:
            raise ConfigError("\n  ".join(unknown))
        auditor = PersonaAuditor(store, personas)
        await auditor.loaded()
        personas.on_change = auditor
        if settings.personas.watch:
            stop = asyncio.Event()
            watcher = asyncio.create_task(personas.watch(stop_event=stop), name="botkit-persona-watch")
            self._stack.push_async_callback(_stop_watcher, stop, watcher)
        return personas, auditor

    async def _start_status_server(self, pool: BackendPool, router: Router) -> None:
        from botkit.status_server import StatusServer

        server = self.settings.server
        self.status_server = StatusServer(
            pool,
            host=server.host,
            port=server.port,
            accepting=lambda: router.accepting,
            turns=lambda: dict(router.turns.turn_counts),
            writes=router.turns.writes.status,
            unsettled=self.unsettled_counts,
        )
        await self.status_server.start()
        self._stack.push_async_callback(self.status_server.stop)
        log.info(
            "health and metrics at http://%s:%d/healthz and /metrics", server.host, self.status_server.port
        )

    async def _repair_leftovers(self, adapters: Sequence[Adapter], leftovers: Sequence[Leftover]) -> None:
        """Make the platform show what happened to each turn a gone process left unfinished:
        read what it shows now and edit, store or remove accordingly (:mod:`botkit.repair`);
        a message it accepted but never began to answer gets one visible note."""
        assert self.bot is not None
        by_platform = {adapter.name: adapter for adapter in adapters}
        left: list[Leftover] = []
        # Each recorded unmarked stream is tried once per process (at its start, or at the
        # first sweep after the record): a refusal is not asked again until the next start.
        self.unmarked_tried |= {leftover.turn for leftover in leftovers if leftover.unmarked}
        for leftover in leftovers:
            adapter = by_platform.get(leftover.key.platform)
            if adapter is not None:
                await repair_leftover(
                    adapter,
                    self.bot.store,
                    self.spool,
                    leftover,
                    self.bot.respond,
                    feedback=self.settings.feedback.enabled,
                )
            elif leftover.intent is None:
                await settle_unread(self.bot.store, self.spool, leftover)
            elif await leave_unread(self.bot.store, leftover):
                left.append(leftover)
        self._left_unsettled(left)

    def _left_unsettled(self, left: Sequence[Leftover]) -> None:
        """Count the turns left for a start that serves their platform, and say so once each
        (at WARNING, per platform, with what to do): the operator must start that adapter."""
        for leftover in left:
            self.unsettled[leftover.turn] = leftover.key.platform
        for platform in sorted({leftover.key.platform for leftover in left}):
            count = sum(1 for p in self.unsettled.values() if p == platform)
            log.warning(
                "%d turn(s) on %s left unsettled: botkit stopped while their final answer was being "
                "shown, and only %s can tell whether it was; this botkit runs no %s adapter, so they "
                "stay unfinished and their records stay in %s; start botkit with the %s adapter to "
                "settle them",
                count, platform, platform, platform,
                self.spool.directory if self.spool is not None else "the spool", platform,
            )  # fmt: skip

    def unsettled_counts(self) -> dict[str, int]:
        """The turns left unsettled, per platform (``/healthz``, ``/metrics``)."""
        counts: dict[str, int] = {}
        for platform in self.unsettled.values():
            counts[platform] = counts.get(platform, 0) + 1
        return counts

    async def _forget_settled_elsewhere(self, store: ConversationStore) -> None:
        """Drop from :attr:`unsettled` the turns another process (serving their platform) settled."""
        if self.unsettled:
            still = {turn.id for turn in await store.unfinished_turns()}
            self.unsettled = {turn: p for turn, p in self.unsettled.items() if turn in still}

    async def _sweep_gone_workers(self, adapters: Sequence[Adapter]) -> None:
        """Every ``database.heartbeat_interval``: settle and repair the turns of processes on
        other hosts (or this one) that are gone while this one serves (see botkit.leftovers)."""
        assert self.bot is not None
        store, database = self.bot.store, self.settings.database
        watch = HeartbeatWatch(database.worker_timeout)

        def judge(workers: Collection[WorkerRecord]) -> set[str]:
            me = store.worker_id
            return watch.gone(workers, me) | gone_on_this_host(workers, me)

        while True:
            await asyncio.sleep(database.heartbeat_interval)
            try:
                await self._forget_settled_elsewhere(store)
                leftovers, gone = await settle_abandoned(
                    store,
                    self.spool,
                    judge,
                    ownerless=False,
                    leave=self.unsettled.keys(),
                    tried=self.unmarked_tried,
                )
                if gone or leftovers:
                    log.warning(
                        "botkit process(es) %s on this database are gone; %d of their replies to repair",
                        sorted(gone) or "no longer registered",
                        len(leftovers),
                    )
                await self._repair_leftovers(adapters, leftovers)
                await store.forget_workers(gone)
            except Exception:
                log.exception("looking for the turns of gone botkit processes failed; will try again")
                watch.reset()

    def build_adapters(
        self, names: Sequence[str], overrides: dict[str, dict[str, Any]] | None = None
    ) -> list[Adapter]:
        """Construct the named adapters with their validated settings (``[console]``, ``[slack]``...)."""
        assert self.bot is not None, "use BotApp as an async context manager"
        adapters: list[Adapter] = []
        for name in names:
            cls = load_adapter_class(name)
            adapter_settings: BaseModel | None = None
            if cls.settings_model is not None:
                adapter_settings = section(self.settings, name, cls.settings_model)
                if overrides and name in overrides:
                    adapter_settings = adapter_settings.model_copy(update=overrides[name])
            adapters.append(cls(self.bot, adapter_settings))
        return adapters

    async def restart_pass(self, adapters: Sequence[Adapter]) -> None:
        """Repair what gone processes left (found at start-up) on ``adapters``' platforms; a
        leftover of a platform none of them serves is stored from what the database knows. Until
        this runs those turns stay unfinished, claimed by this process, so a start that never gets
        here (killed, or an adapter check failed) leaves them for the next one (botkit.repair)."""
        await self._repair_leftovers(adapters, self.leftovers)
        self.leftovers = []

    async def serve(self, adapters: Sequence[Adapter]) -> None:
        """Check every adapter (no half-started bot), then run them until they all end."""
        for adapter in adapters:
            await adapter.check()
        await self.restart_pass(adapters)
        tasks = [asyncio.create_task(a.run(), name=f"botkit-adapter-{a.name}") for a in adapters]
        sweeper = asyncio.create_task(self._sweep_gone_workers(adapters), name="botkit-gone-workers")
        try:
            # asyncio.wait, not gather: cancelling serve() must not cancel the adapters before
            # the replies in flight have landed through their still-open connections.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            # Stop accepting and let replies in flight land while the platform connections are
            # still open; only then close the adapters.
            if self.bot is not None:
                await asyncio.shield(self.bot.drain(self.settings.bot.shutdown_grace))
            raise
        finally:
            sweeper.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(sweeper, *tasks, return_exceptions=True)


async def _prune_deliveries(
    store: ConversationStore, retention: timedelta, audit_retention: timedelta
) -> None:
    """Keep the delivery-claim table small (old claims can no longer be redelivered) and the
    audit trail within ``database.audit_retention_days``."""
    while True:
        try:
            removed = await store.prune_deliveries(retention)
            if removed:
                log.info("forgot %d delivery id(s) older than %s", removed, retention)
            removed = await store.prune_audit(audit_retention)
            if removed:
                log.info("removed %d audit row(s) older than %s", removed, audit_retention)
        except Exception:
            log.exception("pruning old delivery ids failed; will try again")
        await asyncio.sleep(3600)


async def _heartbeat(store: ConversationStore, interval: float) -> None:
    """Tell the other processes on this database that this one still answers its turns."""
    while True:
        await asyncio.sleep(interval)
        try:
            await store.heartbeat()
        except Exception as err:  # the database is away: every process misses its beats alike
            log.warning("heartbeat not stored (%s); trying again in %.0fs", err, interval)


async def _retire(store: ConversationStore) -> None:
    """Leave the workers table at a clean stop; a database that is away by then is no reason
    to fail the shutdown (the row ages out: its heartbeat stops, its pid is gone)."""
    try:
        await store.retire_worker()
    except Exception as err:
        log.warning("could not unregister this process from the database (%s)", err)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])


async def _stop_watcher(stop: asyncio.Event, watcher: asyncio.Task[None]) -> None:
    stop.set()
    watcher.cancel()
    await asyncio.wait([watcher], timeout=5)
