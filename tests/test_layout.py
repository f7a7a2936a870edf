"""The runtime stands on its own: nothing outside botkit/testing imports the test kit, the
stand-in lives in the runtime, no import cycles, and ``botkit standin`` takes vLLM's flags."""

from __future__ import annotations

import ast
import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_nothing_outside_the_test_kit_imports_it() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("botkit", "adapters")
        for path in (ROOT / folder).rglob("*.py")
        if "testing" not in path.relative_to(ROOT).parts
        and any(name == "botkit.testing" or name.startswith("botkit.testing.") for name in _imports(path))
    ]
    assert offenders == []


def test_the_runtime_loads_without_the_fakes_and_without_cycles() -> None:
    code = (
        "import sys, botkit.cli, botkit.app, botkit.llm.standin, botkit.llm.backends, botkit.testing\n"
        "from botkit.testing import RecordingReply\n"
        "print(sorted(m for m in sys.modules if m.startswith('botkit.testing')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    # The lazy kit loads only what was asked for: no fake Slack, fake Discord or TestBot.
    assert out.stdout.strip() == "['botkit.testing', 'botkit.testing.recording']"
    for module in (
        "botkit.pipeline.router",
        "botkit.pipeline.turns",
        "botkit.streaming.streamer",
        "botkit.store",
    ):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)  # each alone


def test_botkit_standin_help_and_port(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "botkit.cli", "standin", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert shown.returncode == 0 and shown.stdout.startswith("usage: botkit standin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def serve_and_ask() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit.cli", "standin", "--port", str(port), "--tokens-per-chunk", "8",
            stdout=asyncio.subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            while b"Starting vLLM API server" not in await asyncio.wait_for(process.stdout.readline(), 30):
                pass
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/health") as response,
            ):
                return response.status
        finally:
            process.terminate()
            await process.wait()

    assert asyncio.run(serve_and_ask()) == 200
