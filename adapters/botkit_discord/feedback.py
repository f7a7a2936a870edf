"""👍/👎 on Discord: two buttons on a reply's last message, and their clicks as votes.

The buttons are message components (one action row) with ``custom_id``
``botkit:feedback:up:<turn id>`` / ``botkit:feedback:down:<turn id>``, sent with the final edit
of a complete answer. They are a discord.py :class:`~discord.ui.DynamicItem`: registered once
on the client (``add_dynamic_items``), it matches any message's button by the ``custom_id``
template, so a click on a reply posted before a restart (no view in memory) is still handled,
which a view kept per message would not survive. A click is a component interaction
(INTERACTION_CREATE, type 3); the vote is answered within Discord's 3 seconds with an ephemeral
"thanks" (callback type 4, flags 64) seen by the voter alone, and the buttons stay as they are
(everyone reading the reply shares them). A redelivered click (the same interaction id) is
acknowledged without a message (type 6, DEFERRED_UPDATE_MESSAGE).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord

from botkit.adapter import AdapterHost
from botkit.events import FeedbackEvent, Vote
from botkit_discord.identity import workspace_of

log = logging.getLogger("botkit_discord.feedback")

TEMPLATE = r"botkit:feedback:(?P<vote>up|down):(?P<turn>[0-9]{1,20})"
_EMOJI: dict[Vote, str] = {"up": "👍", "down": "👎"}

OnVote = Callable[[discord.Interaction[Any], Vote, int], Awaitable[None]]


def custom_id(vote: Vote, turn_id: int) -> str:
    return f"botkit:feedback:{vote}:{turn_id}"


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One vote button; its ``custom_id`` carries the vote and the turn id."""

    def __init__(self, vote: Vote, turn_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary, emoji=_EMOJI[vote], custom_id=custom_id(vote, turn_id)
            )
        )
        self.vote: Vote = vote
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        vote: Vote = "up" if match["vote"] == "up" else "down"
        return cls(vote, int(match["turn"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        on_vote: OnVote | None = getattr(interaction.client, "on_feedback", None)
        if on_vote is None:  # a client without botkit's adapter: nothing to store it in
            await interaction.response.defer()
            return
        await on_vote(interaction, self.vote, self.turn_id)


def feedback_view(turn_id: int) -> discord.ui.View:
    """The action row of a final message: 👍 then 👎 (no timeout: the buttons never expire)."""
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton("up", turn_id))
    view.add_item(FeedbackButton("down", turn_id))
    return view


def has_buttons(message: discord.Message, turn_id: int) -> bool:
    """Whether a message read back shows the vote buttons of ``turn_id`` (by ``custom_id``)."""
    wanted = {custom_id("up", turn_id), custom_id("down", turn_id)}
    for row in message.components:
        for item in getattr(row, "children", [row]):
            if getattr(item, "custom_id", None) in wanted:
                return True
    return False


async def answer_vote(
    host: AdapterHost, interaction: discord.Interaction[Any], vote: Vote, turn_id: int
) -> None:
    """Store the vote through the core, then answer the interaction: ephemeral thanks, or a
    silent acknowledgement for a duplicate."""
    user = interaction.user
    event = FeedbackEvent(
        platform="discord",
        workspace=workspace_of(interaction.guild_id),
        channel=str(interaction.channel_id or ""),
        user=str(user.id),
        turn_id=turn_id,
        vote=vote,
        delivery_id=str(interaction.id),
    )
    receipt = await host.vote(event)
    try:
        if receipt.text is None:
            await interaction.response.defer()  # type 6: acknowledged, nothing changes
        else:
            await interaction.response.send_message(receipt.text, ephemeral=True)
    except (discord.HTTPException, aiohttp.ClientError) as err:
        log.info("could not answer the vote of %s on turn %s: %s", user.id, turn_id, err)
