"""What a starting vLLM server is doing, read from the lines it prints.

A cold ``vllm serve`` takes minutes: a model download, loading the weights, torch.compile, memory
profiling, CUDA graph capture, then the API server. A user whose question waits meanwhile is told
which of these is under way (``⏳ The model is starting (loading weights, 42 s)…``), so a long wait
reads as progress rather than a hang, and an admin can tell a slow download from a stuck compile.

The mapping is from the line shapes vLLM prints (0.8 to 0.26; engine lines carry a prefix such as
``(EngineCore_DP0 pid=123) INFO 04-07 02:44:26 [default_loader.py:384]`` and sometimes colour codes;
tqdm progress lines such as ``Loading safetensors checkpoint shards: 50% Completed`` have none). The
newest line that names a phase wins, since vLLM's processes print out of order; the many lines that
name none (warnings, config dumps) change nothing. botkit only *shows* the phase: readiness is still
``/health`` plus ``/v1/models``, never a log line.
"""

from __future__ import annotations

import re

INITIALIZING = "initializing"
DOWNLOADING = "downloading the model"
LOADING = "loading weights"
COMPILING = "compiling"
PROFILING = "profiling memory"
CUDA_GRAPHS = "capturing CUDA graphs"
API_SERVER = "starting the API server"

_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

# First match wins for one line, so the later phases come first: "init engine (profile, create kv
# cache, warmup model) took" ends the engine start-up, and "Time spent downloading weights" ends the
# download (what follows is loading).
_PHASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), phase)
    for pattern, phase in (
        (
            r"Starting vLLM (API )?server|Available routes are|Application startup complete"
            r"|init engine \(profile",
            API_SERVER,
        ),
        (r"Capturing CUDA ?graphs|Profiling CUDA graph memory|Graph capturing finished", CUDA_GRAPHS),
        (
            r"torch\.compile|torch_compile_cache|Dynamo bytecode transform|Compiling a graph"
            r"|graph of compile range",
            COMPILING,
        ),
        (
            r"Memory profiling takes|Initial profiling/warmup run|Available KV cache memory"
            r"|GPU KV cache size",
            PROFILING,
        ),
        (
            r"Starting to load model|Loading model from scratch|Loading \w+ checkpoint shards"
            r"|Loading weights took|Model loading took|Time spent downloading weights",
            LOADING,
        ),
        (
            r"Using model weights format|Fetching \d+ files|\bDownloading\b"
            r"|\.(safetensors|bin|pt)(\.index\.json)?:\s+\d+%",
            DOWNLOADING,
        ),
        (r"vLLM API server version|Initializing an? (V\d )?LLM engine|Resolved architecture", INITIALIZING),
    )
)


def phase_of(line: str) -> str | None:
    """The phase that ``line`` (one line of vLLM's output) shows the server in; None if it says
    nothing about that."""
    text = _COLOUR.sub("", line)
    for pattern, phase in _PHASES:
        if pattern.search(text):
            return phase
    return None
