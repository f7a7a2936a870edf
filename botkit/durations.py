"""Durations as people write them on the command line and in configuration: ``7d``, ``12h``.

One parser for ``botkit audit --since``, ``botkit db prune --older-than`` and the ``[retention]``
settings, so the same text means the same span everywhere.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` (a bare number is days), for ``--since`` and friends."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 12h, 7d, 2w)")
    return timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
