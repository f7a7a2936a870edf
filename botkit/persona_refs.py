"""Persona names the configuration refers to, checked against the persona folder at start-up.

A binding or an ``[access.personas.NAME]`` table whose name matches no persona file is a typo
that fails silently otherwise: ``"legl" = { allow = ... }`` governs nothing, so the real
``legal`` persona answers everyone, and a channel bound to ``"legl"`` refuses every question.
So does ``[retention.personas]`` under a typo (that persona's turns would be kept for ever). All
stop start-up with the key, the name and the nearest persona, like ``[personas] default``.
A file that exists but does not load yet (broken) is not a typo: its name is known. So too a
channel's platform close to an adapter's name (``"slak:C0LEGAL"``): that binding would never match.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

from botkit.access.rules import ChannelRef
from botkit.config import Settings


def unknown_persona_references(settings: Settings, known: Collection[str]) -> list[str]:
    """One line per configured persona name that no persona file has (empty: all good)."""
    personas, access = settings.personas, settings.access
    problems = []
    for key, binding in personas.bindings.items():
        name = binding if isinstance(binding, str) else binding.persona
        if name not in known:
            problems.append(f"[personas.bindings] {key!r} = {name!r}: {_no_such(name, known)}")
    for name in access.personas:
        if name not in known:
            problems.append(
                f"[access.personas.{name}]: its rules would govern nothing: {_no_such(name, known)}"
            )
    for name in settings.retention.personas:
        if name not in known:
            problems.append(
                f"[retention.personas] {name!r}: it would remove nothing: {_no_such(name, known)}"
            )
    return problems


def misspelt_platforms(settings: Settings, platforms: Collection[str]) -> list[str]:
    """One line per configured channel whose platform is not one of ``platforms`` but close to one
    (a platform nothing is close to may be a third party's, or a test's: left alone)."""
    personas, access = settings.personas, settings.access
    places = [(f"[personas.bindings] {key!r}", key) for key in personas.bindings]
    for key, binding in personas.bindings.items():
        if not isinstance(binding, str):
            places += [(f"[personas.bindings] {key!r} channels", channel) for channel in binding.channels]
    for name, rule in access.personas.items():
        places += [(f"[access.personas.{name}] channels", channel) for channel in rule.channels]
    places += [(f"[retention.channels] {key!r}", key) for key in settings.retention.channels]
    problems = []
    for where, channel in places:
        platform = ChannelRef.parse(channel).platform
        if platform is None or platform in platforms:
            continue
        close = difflib.get_close_matches(platform, sorted(platforms), n=1, cutoff=0.6)
        if close:
            problems.append(
                f"{where}: {channel!r} names the platform {platform!r}, which no adapter has; "
                f"did you mean {close[0]!r}? (adapters: {', '.join(sorted(platforms))})"
            )
    return problems


def _no_such(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"there is no persona {name!r} (personas: {', '.join(sorted(known)) or 'none'}){hint}"
