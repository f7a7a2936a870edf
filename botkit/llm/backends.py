"""Choosing and starting the model backends for this process.

``llm.backend``:

- ``external``: talk to ``llm.base_urls`` (or ``llm.base_url``): vLLM servers or a router that
  someone else runs; several URLs are load-balanced and failed over (:mod:`botkit.llm.pool`);
- ``vllm``: start and supervise ``vllm serve`` (:mod:`botkit.llm.supervisor`); questions asked
  while it starts are queued, and the user is told so;
- ``standin``: run the built-in vLLM stand-in in this process (canned answers, no GPU);
- ``auto`` (the default): ``vllm`` where a GPU and vLLM are present, the stand-in elsewhere.

Whatever is chosen is announced on the first line botkit prints, so nobody mistakes the
stand-in's canned answers for the model's.

Each server gets one :class:`~botkit.llm.client.LLMClient`, whose HTTP session the pool, the
supervisor and the turns share. Shutdown runs in the reverse order of start-up: the pool stops
checking, the supervisor stops its server, then the clients close (once), then the stand-in.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from contextlib import AsyncExitStack

from botkit.config import LLMSettings
from botkit.llm.client import client_for
from botkit.llm.pool import Backend, BackendPool, shown_url
from botkit.llm.supervisor import VLLMSupervisor, served_base_url


def gpu_present() -> bool:
    """A CUDA device node or the NVIDIA driver: enough to try a real vLLM."""
    if os.path.exists("/dev/nvidia0"):
        return True
    return shutil.which("nvidia-smi") is not None and os.path.exists("/proc/driver/nvidia/version")


def vllm_available(settings: LLMSettings) -> bool:
    if shutil.which(settings.vllm.command[0]) is not None and settings.vllm.command[0] != "python3":
        return True
    return importlib.util.find_spec("vllm") is not None


def choose_backend(settings: LLMSettings) -> str:
    if settings.backend != "auto":
        return settings.backend
    return "vllm" if gpu_present() and vllm_available(settings) else "standin"


async def start_backends(settings: LLMSettings, stack: AsyncExitStack) -> tuple[BackendPool, str]:
    """Start what ``llm.backend`` asks for and the pool in front of it; returns (pool, description).

    Shutdown is registered on ``stack``: the pool stops, then the supervised server, then the
    clients they shared close.
    """
    kind = choose_backend(settings)
    if kind == "external":
        urls = settings.base_urls or [settings.base_url]
        description = "external server(s) at " + ", ".join(shown_url(u) for u in urls)
    elif kind == "standin":
        from botkit.llm.standin import Standin

        standin = Standin(model_name=settings.model, tokens_per_second=settings.standin_tokens_per_second)
        await stack.enter_async_context(standin)
        urls = [standin.base_url]
        why = " (no GPU or vLLM found)" if settings.backend == "auto" else ""
        description = f"built-in vLLM stand-in{why} at {standin.base_url}: canned answers, not a real model"
    else:
        urls = [served_base_url(settings)]
        description = f"supervised vLLM ({settings.vllm.model}) at {urls[0]}"
    clients = [client_for(settings, url) for url in urls]
    for client in clients:
        stack.push_async_callback(client.aclose)
    supervisor = VLLMSupervisor(settings, client=clients[0]) if kind == "vllm" else None
    backends = [Backend(client, settings.max_in_flight, supervisor=supervisor) for client in clients]
    pool = BackendPool(
        backends,
        per_user=settings.max_in_flight_per_user,
        queue_timeout=settings.queue_timeout,
        max_queue=settings.max_queue,
        health_interval=settings.health_interval,
        adaptive=settings.adaptive_limits,
    )
    if supervisor is not None:
        supervisor.on_change = pool.on_supervisor_change
        await supervisor.start()
        stack.push_async_callback(supervisor.stop)
    await pool.start()
    stack.push_async_callback(pool.stop)
    return pool, description
