"""Retention: turns older than their configured lifetime are removed by a background task.

``[retention]`` says how long turns (question, answer, reasoning) are kept: per persona
(``[retention.personas]``), per channel (``[retention.channels]``, named as in
``[personas.bindings]``) and a ``default``. A turn's lifetime is the *shorter* of its channel's
and its persona's when either is set (a legal persona's 30 days hold in any channel, a channel's
7 days for any persona there), else the default; nothing set keeps it forever, botkit's behaviour
without a ``[retention]`` section. ``botkit run`` and ``botkit chat`` apply it at start-up and then
every ``interval``; each pass that removed something writes one audit row (counts per persona
and channel, never text). A turn in progress is never removed (:mod:`botkit.store.rights`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botkit.audit import SYSTEM, record
from botkit.durations import parse_duration
from botkit.store.models import utcnow
from botkit.store.rights import (
    DataRights,
    Lifetime,
    Removed,
    TurnRow,
    by_persona_and_channel,
    channel_names,
    split_in_progress,
)

if TYPE_CHECKING:
    from botkit.config import RetentionSettings
    from botkit.store import ConversationStore

log = logging.getLogger("botkit.retention")


@dataclass(frozen=True)
class RetentionPolicy:
    """``[retention]`` with its durations parsed."""

    default: timedelta | None
    personas: Mapping[str, timedelta]
    channels: Mapping[str, timedelta]
    interval: timedelta

    @classmethod
    def from_settings(cls, settings: RetentionSettings) -> RetentionPolicy | None:
        """The policy, or None when nothing limits retention (no task is started then)."""
        policy = cls(
            default=parse_duration(settings.default) if settings.default else None,
            personas={k: parse_duration(v) for k, v in settings.personas.items()},
            channels={k: parse_duration(v) for k, v in settings.channels.items()},
            interval=parse_duration(settings.interval),
        )
        return policy if policy.lifetimes() else None

    def lifetimes(self) -> list[timedelta]:
        return [d for d in (self.default, *self.personas.values(), *self.channels.values()) if d is not None]

    def rules(self, now: datetime) -> list[Lifetime]:
        """Every rule as a cutoff, so SQL reads only the turns one of them may have expired
        (not, each pass, every old turn that no rule limits)."""
        rules = [Lifetime(now - d, persona=p) for p, d in self.personas.items()]
        rules += [Lifetime(now - d, channel=c) for c, d in self.channels.items()]
        if self.default is not None:
            rules.append(Lifetime(now - self.default))
        return rules

    def keep_for(self, turn: TurnRow) -> timedelta | None:
        """How long ``turn`` is kept (None: forever)."""
        channel = next((self.channels[n] for n in channel_names(turn.key) if n in self.channels), None)
        persona = self.personas.get(turn.persona or "")
        specific = [d for d in (channel, persona) if d is not None]
        return min(specific) if specific else self.default


async def apply_retention(store: ConversationStore, policy: RetentionPolicy) -> Removed:
    """One pass: remove every finished turn older than its lifetime; audited if it removed any."""
    now = utcnow()
    rights = DataRights(store)
    candidates = await rights.turns(lifetimes=policy.rules(now))
    expired = [t for t in candidates if (keep := policy.keep_for(t)) is not None and t.asked_at < now - keep]
    if not expired:
        return Removed()
    removed = await rights.remove(expired)
    if removed.questions or removed.answers:
        removable, _ = split_in_progress(expired)
        by = [{"persona": p, "channel": c, "turns": n} for p, c, n in by_persona_and_channel(removable)]
        await record(store, "retention", platform=SYSTEM, actor=SYSTEM, detail={**removed.detail(), "by": by})
        log.info(
            "retention removed %d question(s) and %d answer(s) past their lifetime",
            removed.questions,
            removed.answers,
        )
    return removed


async def run_retention(store: ConversationStore, policy: RetentionPolicy) -> None:
    """Apply ``policy`` now and every ``policy.interval`` until cancelled; a failed pass (the
    database away) is logged and tried again at the next interval."""
    while True:
        try:
            await apply_retention(store, policy)
        except Exception:
            log.exception("applying [retention] failed; will try again in %s", policy.interval)
        await asyncio.sleep(policy.interval.total_seconds())
