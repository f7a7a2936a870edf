"""Where a Discord event happened and who sent it, in the core's terms (strings)."""

from __future__ import annotations

from typing import Any

import discord


def member_roles(user: discord.User | discord.Member) -> frozenset[str]:
    """The member's roles, each by name and by id (without @everyone), so an access rule may name
    a role either way (``discord_roles = ["Legal"]`` or ``["112233445566778899"]``); a user
    outside a guild has none."""
    if isinstance(user, discord.Member):
        roles = [role for role in user.roles if not role.is_default()]
        return frozenset(role.name for role in roles) | frozenset(str(role.id) for role in roles)
    return frozenset()


def channel_and_thread(interaction: discord.Interaction[Any]) -> tuple[str, str]:
    """``(channel, thread)`` of the conversation a slash command belongs to.

    In a thread the command continues that thread's conversation (channel = the thread's parent,
    so channel bindings and access rules apply), in a DM the DM's conversation; elsewhere it is a
    one-off conversation keyed by the interaction id.
    """
    channel = interaction.channel
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id), str(channel.id)
    channel_id = str(interaction.channel_id or "dm")
    if interaction.guild_id is None:
        return channel_id, channel_id
    return channel_id, str(interaction.id)


def workspace_of(guild_id: int | None) -> str:
    return str(guild_id) if guild_id is not None else "dm"
