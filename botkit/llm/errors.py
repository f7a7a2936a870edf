"""The one error type the LLM client raises, and what a chat user is told about it.

Every failure talking to the model server ends up as a :class:`BackendError` so that callers
(the reply streamer, the supervisor, plugins) handle a single exception type and decide on
retry/backoff by ``kind`` rather than by inspecting openai/aiohttp exception classes.

Kinds, and why they are separate:

- ``unavailable``: nothing answered (connection refused, DNS failure, reset before any
  response). The server process may be down; a supervisor should look at it.
- ``timeout``: connecting, waiting for the first token, or waiting between two chunks took
  longer than configured. The server is alive but stuck or far too slow.
- ``http``: the server answered with an error status (or an error object inside the stream);
  ``status`` holds the code. Usually a bug in the request (400) or a server crash (500).
- ``overloaded``: HTTP 429 or 503. The server is reachable but refuses work for now (a vLLM
  router with no free backend, an engine that is restarting); retry later with backoff.
  Kept apart from ``unavailable`` because restarting the server would not help.
- ``cut``: the stream started but ended without a ``finish_reason`` (the connection broke
  mid-answer). Part of the answer may already be on screen.
- ``empty``: the model finished but produced no answer text (DeepSeek-R1's "\\n\\n" trap).
  The client itself never raises this; the layer that retries with the guard does.

``detail`` is for logs and must never contain secrets: the client redacts its API key from
anything it copies in here. ``user_message`` is the sentence a chat user sees.
"""

from __future__ import annotations

from typing import Literal

BackendErrorKind = Literal["unavailable", "timeout", "http", "cut", "empty", "overloaded", "length"]

_SAVED = "please ask again in a minute."


class BackendError(Exception):
    """A failure of the model backend, classified by ``kind`` (see the module docstring)."""

    def __init__(self, kind: BackendErrorKind, detail: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{kind}{f' (HTTP {status})' if status is not None else ''}: {detail}")
        self.kind: BackendErrorKind = kind
        self.status: int | None = status
        self.detail: str = detail

    @property
    def user_message(self) -> str:
        """A short, specific sentence for the chat user; never contains detail or secrets."""
        if self.kind == "unavailable":
            return f"The model server is not reachable right now; {_SAVED}"
        if self.kind == "overloaded":
            return f"The model server is busy right now; {_SAVED}"
        if self.kind == "timeout":
            return f"The model server took too long to answer; {_SAVED}"
        if self.kind == "cut":
            return "The answer was cut off because the connection to the model server broke."
        if self.kind == "empty":
            return "The model returned an empty answer; please rephrase or ask again."
        if self.kind == "length":
            return (
                "The model used its whole answer budget thinking and gave no answer; "
                "try a simpler or more specific question."
            )
        status = f" (HTTP {self.status})" if self.status is not None else ""
        if self.status is not None and 400 <= self.status < 500:
            return f"The model server rejected the request{status}; the question may be too long."
        return f"The model server returned an error{status}; {_SAVED}"
