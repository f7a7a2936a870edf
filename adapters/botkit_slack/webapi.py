"""``chat.postMessage`` and ``chat.update`` for a reply, sent without slack_sdk's per-call set-up.

Why: a reply makes two Web API calls (the placeholder, the final edit), and at 8 tokens per SSE
chunk they were a fifth of its CPU; about half of that was slack_sdk's own work per call, not
aiohttp's: joining the URL, rebuilding the headers, the deprecation check (an ``os.environ``
lookup), the retry bookkeeping, the argument dicts (docs/benchmarks.md, section 4, "Per-reply
fixed CPU at 8 tokens per chunk").

What is sent is the request slack_sdk would send, byte for byte: its URL and headers, computed
once per client with slack_sdk's own helpers; the JSON body with the keys in the order
``AsyncWebClient.chat_postMessage`` / ``chat_update`` put them; the same aiohttp session and
``session.request`` arguments. The answer is read as slack_sdk reads it and handed back as its
``AsyncSlackResponse`` (``.validate()`` raising the same ``SlackApiError``), so
:func:`botkit_slack.reply.slack_call` maps failures to the core's types exactly as before.

slack_sdk's own method is used instead whenever this shortcut could differ: a client without an
open session, with retry handlers or a proxy, with its logger at DEBUG (its request and response
log lines), or a message without text (slack_sdk's accessibility warning).
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.web.internal_utils import _build_unexpected_body_error_message, _get_headers, _get_url

_METHODS = ("chat.postMessage", "chat.update")


@dataclass(frozen=True)
class _Prepared:
    """What slack_sdk recomputes on every call, computed once for one client."""

    session: aiohttp.ClientSession
    token: str | None
    base_url: str
    headers: dict[str, str]
    urls: dict[str, str]
    defaults: dict[str, Any]


_prepared: weakref.WeakKeyDictionary[AsyncWebClient, _Prepared] = weakref.WeakKeyDictionary()


def _prepare(client: AsyncWebClient) -> _Prepared | None:
    """The client's prepared calls, or None where slack_sdk's own method must be used."""
    session = client.session
    if (
        session is None
        or session.closed
        or client.retry_handlers
        or client.proxy
        or client.logger.level <= logging.DEBUG
    ):
        return None
    prepared = _prepared.get(client)
    if (
        prepared is None
        or prepared.session is not session
        or prepared.token != client.token
        or prepared.base_url != client.base_url
    ):
        headers = dict(client.headers)  # as ``api_call`` merges them: no per-call headers
        prepared = _Prepared(
            session=session,
            token=client.token,
            base_url=client.base_url,
            headers=_get_headers(
                headers=headers,
                token=client.token,
                has_json=True,
                has_files=False,
                request_specific_headers=headers,
            ),
            urls={method: _get_url(client.base_url, method) for method in _METHODS},
            defaults=dict(client.default_params),
        )
        _prepared[client] = prepared
    return prepared


async def chat_post_message(
    client: AsyncWebClient,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    thread_ts: str | None,
    metadata: dict[str, Any] | None,
) -> AsyncSlackResponse:
    """``client.chat_postMessage(channel=, text=, blocks=, thread_ts=, metadata=)``, leaner."""
    body = _body(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata)
    return await _call(client, "chat.postMessage", body, client.chat_postMessage)


async def chat_update(
    client: AsyncWebClient,
    *,
    channel: str,
    ts: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    metadata: dict[str, Any] | None,
) -> AsyncSlackResponse:
    """``client.chat_update(channel=, ts=, text=, blocks=, metadata=)``, leaner."""
    body = _body(channel=channel, ts=ts, text=text, blocks=blocks, metadata=metadata)
    return await _call(client, "chat.update", body, client.chat_update)


def _body(**fields: Any) -> dict[str, Any]:
    """The JSON body: the arguments in slack_sdk's order (each method's keyword order above
    is its ``kwargs.update``'s), those that are None left out (its ``_remove_none_values``)."""
    return {key: value for key, value in fields.items() if value is not None}


async def _call(
    client: AsyncWebClient,
    method: str,
    body: dict[str, Any],
    sdk: Callable[..., Awaitable[AsyncSlackResponse]],
) -> AsyncSlackResponse:
    """``method`` sent leaner where that is the same request, else by slack_sdk's ``sdk``."""
    prepared = _prepare(client) if body["text"].strip() else None
    if prepared is None:
        return await sdk(**body)
    return await _send(client, prepared, method, body)


async def _send(
    client: AsyncWebClient, prepared: _Prepared, method: str, body: dict[str, Any]
) -> AsyncSlackResponse:
    """One POST as ``_request_with_session`` makes it with no retry handlers, read as it reads it."""
    for key, value in prepared.defaults.items():  # slack_sdk's ``_set_default_params``
        body.setdefault(key, value)
    url = prepared.urls[method]
    req_args: dict[str, Any] = {
        "headers": prepared.headers,
        "json": body,
        "ssl": client.ssl,
        "proxy": client.proxy,
    }
    async with prepared.session.request(
        "POST",
        url,
        headers=prepared.headers,
        data=None,
        params=None,
        json=body,
        ssl=client.ssl,  # type: ignore[arg-type]  # None, as slack_sdk passes it: aiohttp's True
        proxy=client.proxy,
        auth=None,
    ) as res:
        data = await _read(res)
        headers, status = res.headers, res.status
    response = AsyncSlackResponse(
        client=client,
        http_verb="POST",
        api_url=url,
        req_args=req_args,
        data=data,  # type: ignore[arg-type]
        headers=headers,  # type: ignore[arg-type]
        status_code=status,
    )
    response.validate()  # type: ignore[no-untyped-call]
    return response


async def _read(res: aiohttp.ClientResponse) -> dict[str, Any] | bytes | str:
    """The answer's body as slack_sdk's ``_request_with_session`` reads it."""
    if res.content_type == "application/gzip":
        return await res.read()
    if res.content_type == "text/plain":
        return await res.text()
    try:
        data: dict[str, Any] = await res.json()
    except aiohttp.ContentTypeError:
        return {}
    except json.decoder.JSONDecodeError:
        try:
            text = await res.text()
            raise SlackApiError(_build_unexpected_body_error_message(text), res)  # type: ignore[no-untyped-call]
        except Exception as e:  # as slack_sdk does: this message wraps the one above
            raise SlackApiError(  # type: ignore[no-untyped-call]
                f"Unexpectedly failed to read the response body: {e!s}", res
            ) from e
    return data
