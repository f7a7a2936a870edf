"""Reply markers on Slack: message metadata (see :mod:`botkit.markers`).

Every message botkit posts or edits for a turn carries ``metadata`` = ``{"event_type":
"botkit_reply", "event_payload": {"turn": <id>, "role": <role>}}`` (``chat.postMessage`` and
``chat.update`` take it; a native stream gets it from ``chat.stopStream``, as
``chat.startStream`` takes none); ``conversations.replies`` returns it with ``include_all_metadata``, so
the restart pass finds a turn's messages in its thread even where no id was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botkit.markers import ROLES, ReplyMarker

EVENT_TYPE = "botkit_reply"


def metadata(marker: ReplyMarker | None) -> dict[str, Any] | None:
    """The ``metadata`` argument for a message carrying ``marker`` (None: no metadata)."""
    if marker is None:
        return None
    return {"event_type": EVENT_TYPE, "event_payload": {"turn": marker.turn, "role": marker.role}}


def marker_of(message: Mapping[str, Any]) -> ReplyMarker | None:
    """The marker a message read back carries, or None (not botkit's, or another payload)."""
    data = message.get("metadata")
    if not isinstance(data, Mapping) or data.get("event_type") != EVENT_TYPE:
        return None
    payload = data.get("event_payload")
    if not isinstance(payload, Mapping):
        return None
    turn, role = payload.get("turn"), payload.get("role")
    if not isinstance(turn, int) or isinstance(turn, bool) or role not in ROLES:
        return None
    return ReplyMarker(turn, role)
