"""A reply's ``chat.postMessage`` and ``chat.update`` sent by ``botkit_slack.webapi``: the same
request slack_sdk sends, byte for byte, and the same outcome for every kind of answer.

The wire is compared on a bare aiohttp server that records each request as it arrived (request
line, headers in order, body bytes), with a real ``AsyncWebClient`` on a real session sending
each call both ways. The outcomes (a 429 with ``Retry-After``, a 5xx, Slack's
``internal_error``, a refusal, a body that is not JSON, a dropped connection) are compared as
the core sees them through ``slack_call``. Through the fake Slack, mentions answered by botkit
make their placeholder and final edit without slack_sdk's ``api_call``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botkit_slack import webapi
from botkit_slack.reply import slack_call
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle
from slack_sdk.web.async_base_client import AsyncBaseClient
from slack_sdk.web.async_client import AsyncWebClient

from botkit.events import RateLimited, TransientPlatformError
from botkit.testing.fake_slack import FakeSlack

Answer = Callable[[web.Request], web.StreamResponse]


class Recorder:
    """A bare HTTP server: every request as it arrived, answered by ``answer``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, list[tuple[bytes, bytes]], bytes]] = []
        self.answer: Any = lambda request: web.json_response({"ok": True, "ts": "1.000002"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, list(request.raw_headers), body))
        result = self.answer(request)
        return await result if hasattr(result, "__await__") else result


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_post("/api/{method}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield rec, f"http://127.0.0.1:{port}/api/"
    finally:
        await runner.cleanup()


def client_for(url: str, session: aiohttp.ClientSession, **kwargs: Any) -> AsyncWebClient:
    """As the adapter builds its replies' client: no SDK retries, one shared session."""
    logger = logging.getLogger("test.webapi")
    logger.setLevel(logging.INFO)
    return AsyncWebClient(
        token="xoxb-test", base_url=url, retry_handlers=[], session=session, logger=logger, **kwargs
    )


BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi* ünïcode"}}, {"type": "actions"}]
META = {"event_type": "botkit_reply", "event_payload": {"turn": 7, "role": "final"}}
CALLS: list[tuple[str, dict[str, Any]]] = [
    (
        "post",
        {"channel": "C1", "text": "_Thinking…_", "blocks": None, "thread_ts": "1.0001", "metadata": META},
    ),
    ("post", {"channel": "C1", "text": "top level", "blocks": BLOCKS, "thread_ts": None, "metadata": None}),
    ("update", {"channel": "C1", "ts": "1.0002", "text": "answer — ✓", "blocks": BLOCKS, "metadata": META}),
    ("update", {"channel": "C1", "ts": "1.0002", "text": "partial", "blocks": None, "metadata": None}),
]


async def both_ways(client: AsyncWebClient, kind: str, args: dict[str, Any]) -> tuple[Any, Any]:
    """The call sent by slack_sdk, then by ``webapi``; each outcome as the core sees it."""
    if kind == "post":
        sdk = await outcome(client.chat_postMessage(**args))
        return sdk, await outcome(webapi.chat_post_message(client, **args))
    sdk = await outcome(client.chat_update(**args))
    return sdk, await outcome(webapi.chat_update(client, **args))


async def outcome(call: Any) -> Any:
    """What the core gets: the answer, or the error (its type, first line, cause, response)."""
    try:
        response = await slack_call(call)
    except Exception as err:
        cause = err.__cause__
        source = cause if isinstance(err, TransientPlatformError) else err
        answer = getattr(source, "response", None)
        return (
            type(err).__name__,
            str(err).splitlines()[0],
            getattr(err, "retry_after", None),
            type(cause).__name__,
            (answer.status_code, answer.data) if hasattr(answer, "status_code") else type(answer).__name__,
        )
    return ("ok", response.status_code, response.data, response.api_url, response.http_verb)


@pytest.mark.parametrize("team_id", [None, "T0TEAM"])
async def test_the_wire_is_the_sdks_byte_for_byte(
    recorder: tuple[Recorder, str], team_id: str | None
) -> None:
    rec, url = recorder
    async with aiohttp.ClientSession() as session:
        client = client_for(url, session, team_id=team_id)
        for kind, args in CALLS:
            sdk, lean = await both_ways(client, kind, args)
            assert sdk == lean
            assert sdk[0] == "ok"
    assert len(rec.requests) == 2 * len(CALLS)
    for sdk_request, lean_request in zip(rec.requests[::2], rec.requests[1::2], strict=True):
        assert lean_request == sdk_request
    assert all(b"T0TEAM" in body for *_, body in rec.requests) == (team_id is not None)


async def test_a_client_whose_token_or_url_changes_is_prepared_again(recorder: tuple[Recorder, str]) -> None:
    rec, url = recorder
    async with aiohttp.ClientSession() as session:
        client = client_for(url, session)
        kind, args = CALLS[2]
        await both_ways(client, kind, args)
        client.token = "xoxb-rotated"
        client.base_url = url.replace("127.0.0.1", "localhost")
        sdk, lean = await both_ways(client, kind, args)
    assert sdk == lean
    assert sdk[3].startswith("http://localhost:")
    assert rec.requests[3] == rec.requests[2]
    assert (b"Authorization", b"Bearer xoxb-rotated") in rec.requests[3][2]


def _json(status: int, body: dict[str, Any], **headers: str) -> Answer:
    return lambda request: web.json_response(body, status=status, headers=headers)


async def _drop(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


ANSWERS: dict[str, tuple[Answer, str]] = {
    "429 with Retry-After": (
        _json(429, {"ok": False, "error": "ratelimited"}, **{"Retry-After": "3"}),
        "RateLimited",
    ),
    "503": (_json(503, {"ok": False, "error": "service_unavailable"}), "TransientPlatformError"),
    "500 not JSON": (
        lambda r: web.Response(status=500, text="<html>oops</html>", content_type="text/html"),
        "TransientPlatformError",
    ),
    "internal_error": (_json(200, {"ok": False, "error": "internal_error"}), "TransientPlatformError"),
    "refusal": (_json(200, {"ok": False, "error": "channel_not_found"}), "SlackApiError"),
    # A body slack_sdk cannot read as JSON: its SlackApiError carries aiohttp's response; whether
    # Slack took the call is unknown, as after a reset connection (before: AttributeError).
    "JSON that is not": (
        lambda r: web.Response(text="{nope", content_type="application/json"),
        "TransientPlatformError",
    ),
    # slack_sdk's own ``validate`` calls ``.get`` on a text body (slack_sdk 3.48): both ways alike.
    "text/plain": (lambda r: web.Response(text="ok", content_type="text/plain"), "AttributeError"),
    "connection dropped": (_drop, "TransientPlatformError"),
}


@pytest.mark.parametrize("name", list(ANSWERS))
async def test_every_answer_reaches_the_core_as_the_sdks_did(
    recorder: tuple[Recorder, str], name: str
) -> None:
    rec, url = recorder
    rec.answer, expected = ANSWERS[name]
    async with aiohttp.ClientSession() as session:
        client = client_for(url, session)
        for kind, args in CALLS:
            sdk, lean = await both_ways(client, kind, args)
            assert lean == sdk
            assert sdk[0] == expected
    if expected == RateLimited.__name__:
        assert sdk[2] == 3.0  # Retry-After, as the core waits it out
    assert len(rec.requests) == 2 * len(CALLS)
    assert all(lean == sdk for sdk, lean in zip(rec.requests[::2], rec.requests[1::2], strict=True))


async def test_the_sdk_sends_it_where_its_extras_apply(recorder: tuple[Recorder, str]) -> None:
    """DEBUG logging, SDK retries, no session, or no text: slack_sdk's own method, as before."""
    rec, url = recorder
    seen: list[str] = []
    original = AsyncBaseClient.api_call

    async def counted(self: AsyncBaseClient, api_method: str, **kwargs: Any) -> Any:
        seen.append(api_method)
        return await original(self, api_method, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AsyncBaseClient, "api_call", counted)
        async with aiohttp.ClientSession() as session:
            plain = client_for(url, session)
            await webapi.chat_update(plain, channel="C1", ts="1.1", text="x", blocks=None, metadata=None)
            assert seen == []
            debug = client_for(url, session)
            debug.logger.setLevel(logging.DEBUG)
            await webapi.chat_update(debug, channel="C1", ts="1.1", text="x", blocks=None, metadata=None)
            debug.logger.setLevel(logging.INFO)
            retrying = AsyncWebClient(token="xoxb-test", base_url=url, session=session)
            await webapi.chat_post_message(
                retrying, channel="C1", text="x", blocks=None, thread_ts=None, metadata=None
            )
            with pytest.warns(UserWarning, match="top-level `text` argument is missing"):
                await webapi.chat_update(
                    plain, channel="C1", ts="1.1", text=" ", blocks=BLOCKS, metadata=None
                )
        sessionless = client_for(url, None)  # type: ignore[arg-type]
        await webapi.chat_update(sessionless, channel="C1", ts="1.1", text="x", blocks=None, metadata=None)
    assert seen == ["chat.update", "chat.postMessage", "chat.update", "chat.update"]
    assert len(rec.requests) == 5


MENTIONS = 4


async def test_a_replys_post_and_final_edit_skip_the_sdks_api_call(
    slack: FakeSlack, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted through real mentions: main made every placeholder and final edit through
    ``AsyncBaseClient.api_call`` (2 a reply); now none, and the fake saw the same calls."""
    through_sdk: list[str] = []
    original = AsyncBaseClient.api_call

    async def counted(self: AsyncBaseClient, api_method: str, **kwargs: Any) -> Any:
        through_sdk.append(api_method)
        return await original(self, api_method, **kwargs)

    monkeypatch.setattr(AsyncBaseClient, "api_call", counted)
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        events = [slack.mention_event(f"question {i}?", user=f"U0ASKER{i}") for i in range(MENTIONS)]
        await asyncio.gather(*(slack.push_event(event) for event in events))
        answers = await asyncio.gather(*(wait_answered(slack, event, until=STANDIN_DONE) for event in events))
        await wait_idle(bot.bot)
    assert all(STANDIN_DONE(answer) for answer in answers)
    sent = [c.method for c in slack.calls if c.method in ("chat.postMessage", "chat.update")]
    assert sent.count("chat.postMessage") == MENTIONS  # one placeholder each
    assert sent.count("chat.update") >= MENTIONS  # at least the final edit each
    assert all(c.status == 200 for c in slack.calls if c.method in ("chat.postMessage", "chat.update"))
    assert [m for m in through_sdk if m in ("chat.postMessage", "chat.update")] == []  # main: len(sent)
