"""Running botkit as a user does, in another process: a clean environment, free ports, waiting
for an HTTP endpoint to answer."""

from __future__ import annotations

import os
import socket
import time
import urllib.request


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without botkit settings (a developer's BOTKIT_* must not leak)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    return env | extra


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, seconds: float = 60) -> bytes:
    """The body of the first 200 from ``url``, asked every 0.2 s (the server may be starting)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: bytes = response.read()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
