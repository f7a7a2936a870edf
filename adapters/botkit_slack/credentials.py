"""Start-up checks: the tokens work and the bot token has every scope botkit uses.

Errors name the setting (and its environment variable) and Slack's error code, never a token.
The ``auth.test`` answer is kept (:class:`BotAuth`) and is what bolt authorizes every request
with (:func:`authorizer`), so no event waits for a Web API call before its acknowledgement.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from botkit.adapter import AdapterError
from botkit_slack.events import BotIdentity
from botkit_slack.settings import SlackSettings

log = logging.getLogger("botkit.slack")

#: Bot scopes the adapter uses (the manifest requests exactly these).
REQUIRED_SCOPES = (
    "app_mentions:read",  # app_mention events
    "chat:write",  # chat.postMessage / update / delete / postEphemeral, chat.*Stream
    "commands",  # slash commands (/math, /ask, /persona, /botkit)
    "channels:history",  # message.channels (thread follow-ups) and conversations.replies
    "groups:history",  # the same in private channels
    "im:history",  # message.im (direct messages)
)

#: Bot scopes access rules use when they name channels (``#legal-questions``) or user groups
#: (``@legal-team``); the manifest requests them too. Not checked at start-up, so an app
#: installed before them keeps working until a rule needs them: then the lookup's
#: ``missing_scope`` stops start-up (a channel name) or refuses (a group), naming the scope.
ACCESS_SCOPES = (
    "channels:read",  # conversations.list: channel names, and channel_rename events
    "groups:read",  # the same for private channels (group_rename)
    "usergroups:read",  # usergroups.list / usergroups.users.list: a group's members
)

#: Bot scopes the manifest requests that an older install may lack: without them botkit starts
#: and says what it cannot do (a warning), rather than refusing to start.
OPTIONAL_SCOPES = ("files:write",)  # files.getUploadURLExternal / completeUploadExternal: formula images


@dataclass(frozen=True, slots=True)
class BotAuth:
    """What start-up's ``auth.test`` said: who the bot is, in which workspace, with which scopes."""

    identity: BotIdentity
    team_id: str | None
    enterprise_id: str | None
    scopes: str | None  # ``X-OAuth-Scopes`` as Slack sent it


_BAD_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


def _describe(setting: str, err: SlackApiError) -> str:
    code = str(err.response.get("error") or f"HTTP {err.response.status_code}")
    env = f"BOTKIT_SLACK__{setting.upper()}"
    if code == "missing_scope":
        needed = err.response.get("needed") or "?"
        return (
            f"Slack: slack.{setting} lacks the scope {needed!r} (missing_scope). Add it under "
            "OAuth & Permissions (or recreate the app from adapters/botkit_slack/manifest.yaml) "
            "and reinstall the app."
        )
    if code in _BAD_TOKEN_ERRORS:
        return (
            f"Slack rejected slack.{setting} ({code}). Set a valid token in botkit.toml [slack] "
            f"{setting} or the environment variable {env}."
        )
    return f"Slack refused the check of slack.{setting}: {code}"


async def verify_bot_token(client: AsyncWebClient, api_url: str) -> BotAuth:
    """``auth.test`` with the bot token, then compare the granted scopes (``X-OAuth-Scopes``)."""
    try:
        response = await client.auth_test()
    except SlackApiError as err:
        raise AdapterError(_describe("bot_token", err)) from None
    except (SlackClientError, OSError) as err:
        raise AdapterError(f"cannot reach Slack at slack.api_url={api_url!r}: {err}") from None
    user_id, bot_id = response.get("user_id"), response.get("bot_id")
    if not user_id or not bot_id:
        raise AdapterError(
            "slack.bot_token is not a bot token (auth.test returned no bot_id); use the xoxb- "
            "token from OAuth & Permissions (BOTKIT_SLACK__BOT_TOKEN)"
        )
    granted_header = response.headers.get("X-OAuth-Scopes") if response.headers else None
    if granted_header is not None:
        granted = {s.strip() for s in str(granted_header).split(",") if s.strip()}
        missing = [s for s in REQUIRED_SCOPES if s not in granted]
        if missing:
            raise AdapterError(
                f"Slack: slack.bot_token lacks the scope(s) {', '.join(missing)}. Add them under "
                "OAuth & Permissions (or recreate the app from adapters/botkit_slack/manifest.yaml) "
                "and reinstall the app to the workspace."
            )
        lacking = [s for s in OPTIONAL_SCOPES if s not in granted]
        if lacking:
            log.warning(
                "Slack: slack.bot_token lacks the scope(s) %s: math answers come without their formula "
                "image. Add them under OAuth & Permissions and reinstall the app to have it.",
                ", ".join(lacking),
            )
    return BotAuth(
        identity=BotIdentity(user_id=str(user_id), bot_id=str(bot_id)),
        team_id=response.get("team_id"),
        enterprise_id=response.get("enterprise_id"),
        scopes=None if granted_header is None else str(granted_header),
    )


async def verify_app_token(client: AsyncWebClient, app_token: str, api_url: str) -> None:
    """Socket Mode: the app-level token can open a connection (``connections:write``)."""
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as err:
        raise AdapterError(_describe("app_token", err)) from None
    except (SlackClientError, OSError) as err:
        raise AdapterError(f"cannot reach Slack at slack.api_url={api_url!r}: {err}") from None


async def verify(client: AsyncWebClient, settings: SlackSettings) -> BotAuth:
    auth = await verify_bot_token(client, settings.api_url)
    if settings.mode == "socket" and settings.app_token is not None:
        await verify_app_token(client, settings.app_token.get_secret_value(), settings.api_url)
    return auth


def authorizer(auth: BotAuth, bot_token: str) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Bolt's ``authorize`` for ``AsyncApp``: every request authorized by start-up's ``auth.test``.

    Given only a token, bolt's ``AsyncApp`` calls ``auth.test`` itself on the first request,
    before the listener acknowledges it: a Web API round trip inside Slack's 3-second deadline
    (missed when the API is slow). The answer is the one bolt would build from its own call
    (its ``_to_authorize_result``), for the bot token botkit uses; only the user is the request's.

    The scopes are split once here: given the header's string, ``AuthorizeResult`` splits it on
    every request (tens of scopes, about 0.7 % of a reply's CPU); the list is the same one it
    would build, copied per request so that no request's context shares it with another.
    """
    scopes = None if auth.scopes is None else [scope.strip() for scope in auth.scopes.split(",")]

    async def authorize(user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=auth.enterprise_id,
            team_id=auth.team_id,
            bot_id=auth.identity.bot_id,
            bot_user_id=auth.identity.user_id,
            bot_token=bot_token,
            bot_scopes=None if scopes is None else scopes.copy(),
            user_id=user_id,
        )

    return authorize
