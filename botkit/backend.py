"""Choosing and starting the model backend for this process.

``llm.backend``:

- ``external``: talk to ``llm.base_url`` (a vLLM server or router someone else runs);
- ``vllm``: start and supervise ``vllm serve`` (see :mod:`botkit.llm.supervisor`);
- ``standin``: run the built-in vLLM stand-in in this process (canned answers, no GPU);
- ``auto`` (the default): ``vllm`` where a GPU and vLLM are present, the stand-in elsewhere.

Whatever is chosen is announced on the first line botkit prints, so nobody mistakes the
stand-in's canned answers for the model's.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass

from botkit.config import LLMSettings


@dataclass(frozen=True)
class Backend:
    base_url: str
    kind: str
    description: str


def gpu_present() -> bool:
    """A CUDA device node or a working ``nvidia-smi``: enough to try a real vLLM."""
    if os.path.exists("/dev/nvidia0"):
        return True
    return shutil.which("nvidia-smi") is not None and os.path.exists("/proc/driver/nvidia/version")


def vllm_available(settings: LLMSettings) -> bool:
    command = settings.vllm.command[0]
    if shutil.which(command) is not None:
        return True
    return importlib.util.find_spec("vllm") is not None


def choose_backend(settings: LLMSettings) -> str:
    if settings.backend != "auto":
        return settings.backend
    return "vllm" if gpu_present() and vllm_available(settings) else "standin"


async def start_backend(settings: LLMSettings, stack: AsyncExitStack) -> Backend:
    """Start what ``llm.backend`` asks for; its shutdown is registered on ``stack``."""
    kind = choose_backend(settings)
    if kind == "external":
        return Backend(settings.base_url, kind, f"external OpenAI-compatible server at {settings.base_url}")
    if kind == "standin":
        from botkit.testing.standin import Standin

        standin = Standin(model_name=settings.model, tokens_per_second=settings.standin_tokens_per_second)
        await stack.enter_async_context(standin)
        why = " (no GPU or vLLM found)" if settings.backend == "auto" else ""
        return Backend(
            standin.base_url,
            kind,
            f"built-in vLLM stand-in{why} at {standin.base_url}: canned answers, not a real model",
        )
    from botkit.llm.supervisor import VLLMSupervisor

    supervisor = VLLMSupervisor(settings)
    await stack.enter_async_context(supervisor)
    return Backend(
        supervisor.base_url, kind, f"supervised vLLM ({settings.vllm.model}) at {supervisor.base_url}"
    )
