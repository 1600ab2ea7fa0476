"""POST /schedule input validation: every bad body is a 400 naming the field, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import pytest
from aiohttp import web

from archibald_actors import ManualClock, SyncService
from archibald_actors.web import create_app

from .conftest import PAUSED, SECRET, Api, bearer

FIELDS = ("syncType", "intervalMinutes", "startDelayMinutes", "enabled")


async def post_raw(api: Api, body: bytes, **headers: str) -> tuple[int, Any]:
    async with api.client.post(
        "/api/sync/schedule",
        data=body,
        headers={**bearer("admin"), "Content-Type": "application/json", **headers},
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b"{", "body"),
        (b"\xff\xfe{}", "body"),
        (b"[1, 2]", "body"),
        (b'"orders"', "body"),
        (b"null", "body"),
        (b"[" * 100_00 + b"]" * 100_00, "body"),
        # numbers with no finite value: refused by the field they were sent in
        (
            b'{"syncType": "orders", "intervalMinutes": NaN}',
            "intervalMinutes must be between 5 and 180 minutes, got NaN",
        ),
        (
            b'{"syncType": "orders", "intervalMinutes": Infinity}',
            "intervalMinutes must be between 5 and 180 minutes, got Infinity",
        ),
        (
            b'{"syncType": "orders", "intervalMinutes": -Infinity}',
            "intervalMinutes must be between 5 and 180 minutes, got -Infinity",
        ),
        (
            b'{"syncType": "orders", "startDelayMinutes": 1e309}',
            "startDelayMinutes must be between 0 and 180 minutes, got 1e309",
        ),
        (b'{"syncType": "orders", "intervalMinutes": 1' + b"0" * 5000 + b"}", "body"),
        (
            b'{"syncType": "orders", "intervalMinutes": 1' + b"0" * 400 + b"}",
            "intervalMinutes must be between 5 and 180 minutes, got a huge number",
        ),
        (b'{"syncType": "orders", "enabled": NaN}', "enabled must be true or false, got NaN"),
        (b'{"syncType": NaN, "enabled": true}', "syncType must be a string, got NaN"),
    ],
)
async def test_bodies_that_are_not_a_json_object(api: Api, body: bytes, field: str) -> None:
    status, answer = await post_raw(api, body)
    assert status == 400
    assert answer["success"] is False
    assert field in answer["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"intervalMinutes": 15}, "syncType"),
        ({"syncType": "nope", "intervalMinutes": 15}, "syncType"),
        ({"syncType": 5, "intervalMinutes": 15}, "syncType"),
        ({"syncType": None, "intervalMinutes": 15}, "syncType"),
        ({"syncType": "orders"}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": "15"}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": True}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": None}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": [15]}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": {"v": 15}}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": 4.99}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": 0}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": -10}, "intervalMinutes"),
        ({"syncType": "orders", "intervalMinutes": 180.01}, "intervalMinutes"),
        ({"syncType": "orders", "startDelayMinutes": -1}, "startDelayMinutes"),
        ({"syncType": "orders", "startDelayMinutes": 181}, "startDelayMinutes"),
        ({"syncType": "orders", "startDelayMinutes": "0"}, "startDelayMinutes"),
        ({"syncType": "orders", "startDelayMinutes": False}, "startDelayMinutes"),
        ({"syncType": "orders", "enabled": "yes"}, "enabled"),
        ({"syncType": "orders", "enabled": 1}, "enabled"),
        ({"syncType": "orders", "enabled": None}, "enabled"),
        ({"syncType": "orders", "intervalMinutes": 15, "priority": 9}, "priority"),
        ({"syncType": "orders", "interval": 15}, "interval"),
    ],
)
async def test_bad_fields(api: Api, body: dict[str, Any], field: str) -> None:
    before = await asyncio.wrap_future(api.service.schedule_future())
    status, answer = await post_raw(api, json.dumps(body).encode())
    assert status == 400, answer
    assert answer["success"] is False
    assert field in answer["error"]
    assert (await asyncio.wrap_future(api.service.schedule_future())) == before  # nothing changed


@pytest.mark.parametrize(
    "body",
    [
        {"syncType": "orders", "intervalMinutes": 5},
        {"syncType": "orders", "intervalMinutes": 180},
        {"syncType": "orders", "intervalMinutes": 7.5},
        {"syncType": "products", "startDelayMinutes": 0},
        {"syncType": "products", "startDelayMinutes": 180},
        {"syncType": "invoices", "enabled": True},
    ],
)
async def test_boundaries_are_accepted(api: Api, body: dict[str, Any]) -> None:
    status, answer = await post_raw(api, json.dumps(body).encode())
    assert status == 200, answer
    entry = answer["data"][body["syncType"]]
    assert entry[
        "interval"
        if "intervalMinutes" in body
        else "startDelay"
        if "startDelayMinutes" in body
        else "enabled"
    ] == next(v for k, v in body.items() if k != "syncType")


async def test_a_body_past_64_kib_is_a_json_413(api: Api) -> None:
    padding = " " * (64 * 1024)
    body = ('{"syncType": "orders", "intervalMinutes": 20}' + padding).encode()
    status, answer = await post_raw(api, body)
    assert status == 413
    assert answer["success"] is False


async def test_a_chunked_body_past_64_kib_is_a_413_too(api: Api) -> None:
    async def chunks() -> Any:
        for _ in range(80):
            yield b" " * 1024

    async with api.client.post(
        "/api/sync/schedule", data=chunks(), headers={**bearer("admin"), "Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert (await response.json())["success"] is False


async def test_exactly_64_kib_is_read(api: Api) -> None:
    core = b'{"syncType": "orders", "intervalMinutes": 20}'
    status, answer = await post_raw(api, core + b" " * (64 * 1024 - len(core)))
    assert status == 200, answer


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choices: list[Any] = [
        None,
        True,
        False,
        0,
        -1,
        5,
        180,
        181,
        4.999,
        1e308,
        -0.0,
        "",
        "15",
        "orders",
        "prices",
        "\u0000",
        "é",
    ]
    kind = rng.randrange(4 if depth < 3 else 2)
    if kind == 0:
        return rng.choice(choices)
    if kind == 1:
        return rng.uniform(-1000, 1000)
    if kind == 2:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = [*FIELDS, "other", ""]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


async def test_fuzzed_bodies_never_cause_a_500(api: Api) -> None:
    rng = random.Random(20260101)
    seen = set()
    for _ in range(300):
        body = _random_value(rng)
        if rng.random() < 0.5:  # near-valid: a known type and a field or two, some in range
            body = {"syncType": rng.choice(["orders", "ddt", "nope", 3])}
            for name in rng.sample(FIELDS[1:], rng.randrange(1, 3)):
                body[name] = rng.choice([rng.uniform(0, 200), 5, 30, True, False, _random_value(rng, 2)])
        raw = json.dumps(body).encode()
        if rng.random() < 0.1:
            raw = raw[: rng.randrange(len(raw) + 1)]  # truncated JSON
        status, answer = await post_raw(api, raw)
        seen.add(status)
        assert status in (200, 400), (raw, status, answer)
        assert answer["success"] is (status == 200)
    assert seen == {200, 400}


class LogSignal(logging.Handler):
    """Sets ``event`` when a record whose message contains ``text`` is logged."""

    def __init__(self, text: str, event: asyncio.Event) -> None:
        super().__init__()
        self.text = text
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_a_client_gone_before_its_body_arrived_is_no_error_of_ours(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The server as serve runs it (an AppRunner: handlers are not cancelled when their client
    # goes, unlike under the test client): reading the body then fails with "Connection lost".
    runner = web.AppRunner(create_app(SyncService(schedule=PAUSED, clock=ManualClock()), secret=SECRET))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        _, writer = await asyncio.open_connection(host, port)
        head = (
            "POST /api/sync/schedule HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Authorization: {bearer()['Authorization']}\r\nContent-Length: 1000\r\n\r\n"
        )
        went_away = asyncio.Event()  # set by the log record itself, on the loop's thread
        signal = LogSignal("went away", went_away)
        web_log = logging.getLogger("archibald_actors.web")
        web_log.addHandler(signal)
        try:
            with caplog.at_level(logging.INFO, logger="archibald_actors.web"):
                writer.write(head.encode() + b'{"syncType"')  # 11 of the 1,000 bytes promised
                await writer.drain()
                writer.close()
                await writer.wait_closed()
                await asyncio.wait_for(went_away.wait(), 5.0)
        finally:
            web_log.removeHandler(signal)
    finally:
        await runner.cleanup()
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert gone and gone[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
