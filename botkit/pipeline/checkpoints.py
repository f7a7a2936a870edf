"""Streaming answers' checkpoints: every streaming turn's text so far, all in one write per interval.

A checkpoint is what a crash (SIGKILL, power) leaves for the restart pass to show: the partial
answer of each turn still streaming. It used to be one task, one UPDATE and one commit per turn
every :data:`CHECKPOINT_INTERVAL`, so at 500 streams that was 250 transactions a second, each
with its own session, waiting in the store's gate beside the turns' own rows. Here one loop
collects the turns whose text grew since their last checkpoint and stores them with one
executemany and one commit (:meth:`ConversationStore.checkpoints
<botkit.store.ConversationStore.checkpoints>`), which costs about as much as one turn's did.

A write that fails (the database is away) is logged and the same turns are tried again at the
next interval; it never stops an answer. Each row applies only while its turn is unfinished, so
a late checkpoint cannot overwrite a final answer stored after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botkit.store import ConversationStore

log = logging.getLogger("botkit.pipeline.turns")  # the name the checkpoint warnings always had

CHECKPOINT_INTERVAL = 2.0  # seconds between writes of a streaming answer's text (not per token)

#: A streaming turn's (answer, reasoning) so far, as the user has it (raw, not yet stored form).
Snapshot = Callable[[], tuple[str, str]]
#: The stored form of a snapshot: (answer, reasoning or None), as the recorder would write it.
Stored = Callable[[str, str], tuple[str, str | None]]


@dataclass
class _Turn:
    snapshot: Snapshot
    stored_form: Stored
    stored: str = ""  # the raw answer of the last checkpoint that landed


class Checkpoints:
    """The checkpoints of all streaming turns of one process; :meth:`track` a turn while it streams."""

    def __init__(self, store: ConversationStore, *, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._turns: dict[int, _Turn] = {}
        self._loop: asyncio.Task[None] | None = None
        self.writes = 0  # executemany calls that landed (for benchmarks and tests)

    def track(self, assistant_id: int, snapshot: Snapshot, stored_form: Stored) -> None:
        """Checkpoint turn ``assistant_id`` from now on, reading its text with ``snapshot``."""
        self._turns[assistant_id] = _Turn(snapshot, stored_form)
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run(), name="botkit-checkpoints")

    def untrack(self, assistant_id: int) -> None:
        """The turn stopped streaming (its final write follows); no more checkpoints for it."""
        self._turns.pop(assistant_id, None)

    def __len__(self) -> int:
        return len(self._turns)

    async def _run(self) -> None:
        while self._turns:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> int:
        """Store every tracked turn whose answer grew since its last checkpoint, in one write;
        returns how many rows it sent (0: nothing new, or the write failed and will be retried)."""
        due: list[tuple[int, _Turn, str]] = []
        rows: list[tuple[int, str, str | None]] = []
        for assistant_id, turn in list(self._turns.items()):
            answer, reasoning = turn.snapshot()
            if answer == turn.stored:
                continue
            due.append((assistant_id, turn, answer))
            rows.append((assistant_id, *turn.stored_form(answer, reasoning)))
        if not rows:
            return 0
        try:
            await self.store.checkpoints(rows)
        except Exception as err:
            log.warning("could not checkpoint a streaming answer (%s); will retry", type(err).__name__)
            return 0
        self.writes += 1
        for _, turn, answer in due:
            turn.stored = answer
        return len(rows)

    async def close(self) -> None:
        """Stop the loop (at shutdown); a write in flight is cancelled, as a turn's was."""
        self._turns.clear()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
