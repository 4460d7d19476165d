"""The WebSocket hub over real sockets: routing, stamping, bad input, limits, backpressure.

Every test serves the app with the one-port server (``stinercut serve``'s code
path) on 127.0.0.1 and talks to it with trio-websocket clients; keepalive and
drop-in behaviour live in ``test_hub_dropin.py``, caps and closes in
``test_hub_limits.py``. "Nothing else arrived" is checked without sleeping: a
barrier message is published after the message under test, and since each
outbox is first-in first-out, anything routed to a client arrives before the
barrier.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.hub import MessageError, parse_client_message
from tests.support.server import running_server

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BARRIER = "test:barrier"
STEP_S = 10.0  # generous "does not hang" bound for one exchange
Served = tuple[StinercutApp, str]


# -- helpers (also used by test_hub_backplane.py) -------------------------------------


def ws_url(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://", 1) + "/ws" + (f"?{query}" if query else "")


@asynccontextmanager
async def connect(
    base: str,
    client_type: str | None = None,
    *,
    query: str = "",
    headers: Sequence[tuple[str, str]] | None = None,
    message_queue_size: int = 64,
) -> AsyncIterator[WebSocketConnection]:
    parts = [f"client_type={client_type}"] if client_type is not None else []
    if query:
        parts.append(query)
    async with open_websocket_url(
        ws_url(base, "&".join(parts)),
        extra_headers=list(headers or []),
        message_queue_size=message_queue_size,
        max_message_size=16 * 1024 * 1024,
    ) as ws:
        yield ws


async def send(ws: WebSocketConnection, message: Any) -> None:
    await ws.send_message(message if isinstance(message, str | bytes) else json.dumps(message))


async def receive(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(STEP_S):
        return json.loads(await ws.get_message())


async def sync(ws: WebSocketConnection) -> None:
    """Round trip through the hub: every frame ``ws`` sent before is routed now."""
    await send(ws, {"command": "hub:ping", "data": {}})
    reply = await receive(ws)
    assert reply["command"] == "hub:pong", reply


async def until_barrier(ws: WebSocketConnection, count: int = 1) -> list[dict[str, Any]]:
    """Everything ``ws`` receives before ``count`` barriers, barriers left out."""
    seen: list[dict[str, Any]] = []
    while count:
        message = await receive(ws)
        if message["command"] == BARRIER:
            count -= 1
        else:
            seen.append(message)
    return seen


async def closed_with(ws: WebSocketConnection) -> tuple[int, str]:
    """Read until the server closes; the close code and reason."""
    with trio.fail_after(STEP_S):
        while True:
            try:
                await ws.get_message()
            except ConnectionClosed as closed:
                return closed.reason.code, closed.reason.reason or ""


async def wait_for(predicate: Any, what: str, seconds: float = STEP_S) -> None:
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 - polls state that has no event to wait on
            await trio.sleep(0.01)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Served]:
    """An app built from ``settings`` and served by Hypercorn (for tweaked settings;
    the plain case is conftest's ``served`` fixture)."""
    app = create_app(settings)
    async with running_server(app) as url:
        yield app, url


# -- routing -------------------------------------------------------------------------

CLIENTS = ("F1", "F2", "D1", "D2")
# sender -> target ("missing" = no target field) -> who receives it
ROUTES: dict[str, dict[str, set[str]]] = {
    "F1": {"missing": {"D1", "D2"}, "all": {"D1", "D2"}, "frontend": {"F2"}, "detector": {"D1", "D2"}},
    "D1": {"missing": {"F1", "F2"}, "all": {"F1", "F2"}, "frontend": {"F1", "F2"}, "detector": {"D2"}},
    "backend": {"all": set(CLIENTS), "frontend": {"F1", "F2"}, "detector": {"D1", "D2"}},
}


@pytest.mark.parametrize("sender", sorted(ROUTES))
async def test_routing_table(served: Served, sender: str) -> None:
    app, live_url = served
    async with AsyncExitStack() as stack:
        ws = {
            name: await stack.enter_async_context(
                connect(live_url, "frontend" if name.startswith("F") else "detector")
            )
            for name in CLIENTS
        }
        for target, expected in ROUTES[sender].items():
            command = f"test:{sender}-{target}"
            if sender == "backend":
                await app.hub.publish(command, {"n": 1}, target=target)
            else:
                message: dict[str, Any] = {"command": command, "data": {"n": 1}}
                if target != "missing":
                    message["target"] = target
                await send(ws[sender], message)
                await sync(ws[sender])
            await app.hub.publish(BARRIER, {}, target="all")
            for name in CLIENTS:
                got = [m for m in await until_barrier(ws[name]) if m["command"] == command]
                if name in expected:
                    assert len(got) == 1, (sender, target, name, got)
                    assert got[0]["data"] == {"n": 1}
                    assert got[0]["target"] == ("all" if target == "missing" else target)
                    assert got[0]["sender"] == ("backend" if sender == "backend" else ws_type(sender))
                else:
                    assert got == [], (sender, target, name, got)


def ws_type(name: str) -> str:
    return "frontend" if name.startswith("F") else "detector"


async def test_sender_is_stamped_and_cannot_be_spoofed(served: Served) -> None:
    _, live_url = served
    async with connect(live_url, "frontend") as front, connect(live_url, "detector") as det:
        for claimed in ("backend", "frontend", "admin", None, 42):
            await send(det, {"command": "device.mounted", "sender": claimed, "target": "frontend",
                             "data": {"device": "sdb1"}, "id": "corr-1"})
            message = await receive(front)
            assert message["sender"] == "detector"
            assert message["command"] == "device.mounted"
            assert message["data"] == {"device": "sdb1"}
            assert message["id"] == "corr-1"  # fields of the client's own are kept


async def test_timestamp_added_when_absent_and_kept_when_present(served: Served) -> None:
    _, live_url = served
    async with connect(live_url, "frontend") as front, connect(live_url, "detector") as det:
        await send(det, {"command": "detector.status", "target": "frontend", "data": {}})
        stamped = await receive(front)
        assert TIMESTAMP.match(stamped["timestamp"]), stamped
        await send(det, {"command": "detector.status", "data": {}, "timestamp": "2024-01-02T03:04:05Z"})
        kept = await receive(front)
        assert kept["timestamp"] == "2024-01-02T03:04:05Z"
        await send(det, {"command": "detector.status", "timestamp": None})
        null = await receive(front)
        assert TIMESTAMP.match(null["timestamp"]) and null["data"] == {}


async def test_missing_client_type_means_frontend(served: Served) -> None:
    app, live_url = served
    async with connect(live_url) as implicit, connect(live_url, "") as empty:
        assert app.hub.local_counts() == {"frontend": 2, "detector": 0}
        await app.hub.publish("job:progress", {"job": 1, "percent": 50})
        for ws in (implicit, empty):
            message = await receive(ws)
            assert message["command"] == "job:progress"
            assert message["sender"] == "backend"
            assert message["target"] == "frontend"
            assert message["data"] == {"job": 1, "percent": 50}
            assert TIMESTAMP.match(message["timestamp"])


@pytest.mark.parametrize("client_type", ["admin", "backend", "FRONTEND", "frontend,detector", "x" * 300])
async def test_unknown_client_type_is_refused_with_1008(
    served: Served, client_type: str
) -> None:
    app, live_url = served
    async with connect(live_url, client_type) as ws:
        code, reason = await closed_with(ws)
    assert code == 1008
    assert "client_type" in reason
    assert app.hub.local_counts() == {"frontend": 0, "detector": 0}


# -- publish -------------------------------------------------------------------------


async def test_publish_refuses_caller_mistakes(app: StinercutApp) -> None:
    with pytest.raises(ValueError, match="target"):
        await app.hub.publish("job:progress", {}, target="everyone")
    with pytest.raises(ValueError, match="command"):
        await app.hub.publish("", {})
    with pytest.raises(TypeError):
        await app.hub.publish("job:progress", {"when": object()})
    with pytest.raises(TypeError):
        await app.hub.publish("job:progress", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_publish_with_no_clients_is_fine(app: StinercutApp) -> None:
    await app.hub.publish("job:status", {"job": 3, "status": "completed"}, target="all")


async def test_publish_never_waits_for_a_client_that_does_not_read(settings: Settings) -> None:
    small = attrs.evolve(settings, ws_outbox_messages=4)
    async with serving(small) as (app, url):
        async with connect(url, "frontend", message_queue_size=1) as stuck:
            await sync(stuck)
            pad = "p" * 8192
            with trio.fail_after(STEP_S):
                # Far more than the socket buffers hold: the outbox must overflow.
                for n in range(3000):
                    await app.hub.publish("job:progress", {"n": n, "pad": pad})
                    if app.hub.local_counts()["frontend"] == 0:
                        break
            assert app.hub.local_counts()["frontend"] == 0
            code, reason = await closed_with(stuck)
            assert code == 1013 and "outbox overflow" in reason
        async with connect(url, "frontend") as fresh:
            await app.hub.publish("job:progress", {"n": "after"})
            assert (await receive(fresh))["data"] == {"n": "after"}


# -- bad input -----------------------------------------------------------------------

BAD_INPUTS = [
    ("{not json", "invalid_json"),
    ("", "invalid_json"),
    ('{"command": "x", "data": NaN}', "invalid_json"),
    ("[1, 2]", "not_an_object"),
    ('"device.mounted"', "not_an_object"),
    ("null", "not_an_object"),
    (b"\x00\x01binary", "binary_frame"),
    (b"", "binary_frame"),
    ('{"data": {}}', "missing_command"),
    ('{"command": ""}', "missing_command"),
    ('{"command": 5}', "missing_command"),
    ('{"command": "x", "target": "everyone"}', "bad_target"),
    ('{"command": "x", "target": ["frontend"]}', "bad_target"),
    ('{"command": "x", "data": [1]}', "bad_data"),
    ('{"command": "x", "data": "text"}', "bad_data"),
]


async def test_bad_input_gets_hub_error_and_everyone_keeps_working(served: Served) -> None:
    _, live_url = served
    async with connect(live_url, "frontend") as front, connect(live_url, "detector") as det:
        for raw, code in BAD_INPUTS:
            await send(det, raw)
            error = await receive(det)
            assert error["command"] == "hub:error", (raw, error)
            assert error["sender"] == "backend"
            assert error["data"]["code"] == code, (raw, error)
            assert isinstance(error["data"]["error"], str) and error["data"]["error"]
            # The connection is kept and routing goes on, for it and for the others.
            await send(det, {"command": "device.mounted", "target": "frontend", "data": {"raw": repr(raw)}})
            assert (await receive(front))["data"] == {"raw": repr(raw)}


@pytest.mark.parametrize(("raw", "code"), BAD_INPUTS)
def test_parse_client_message_names_the_problem(raw: str | bytes, code: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse_client_message(raw)
    assert caught.value.code == code


async def test_oversized_frame_closes_with_1009_and_limit_is_inclusive(settings: Settings) -> None:
    limited = attrs.evolve(settings, ws_max_message_bytes=2048)
    async with serving(limited) as (app, url):
        async with connect(url, "frontend") as front, connect(url, "detector") as det:
            envelope = json.dumps({"command": "big", "target": "frontend", "data": {"pad": ""}})
            exact = envelope.replace('"pad": ""', '"pad": "' + "x" * (2048 - len(envelope)) + '"')
            assert len(exact.encode()) == 2048
            await send(det, exact)
            assert len((await receive(front))["data"]["pad"]) == 2048 - len(envelope)
            # Multi-byte characters count as bytes, not as characters.
            too_big = exact.replace("x", "é", 1)
            assert len(too_big) == 2048 < len(too_big.encode())
            await send(det, too_big)
            code, reason = await closed_with(det)
            assert code == 1009
            assert "2049" in reason and "2048" in reason
            await wait_for(lambda: app.hub.local_counts()["detector"] == 0, "detector removed")
            # The frontend never saw the oversized message, and still works.
            await app.hub.publish(BARRIER, {}, target="all")
            assert await until_barrier(front) == []


# -- backpressure --------------------------------------------------------------------


async def test_slow_consumer_is_dropped_while_others_receive_everything(settings: Settings) -> None:
    small = attrs.evolve(settings, ws_outbox_messages=8, ws_max_message_bytes=64 * 1024)
    async with serving(small) as (app, url):
        # message_queue_size=1: the client library stops reading the socket too,
        # so the server's TCP send buffer fills and its outbox overflows.
        async with (
            connect(url, "frontend", message_queue_size=1) as stuck,
            connect(url, "frontend") as healthy,
            connect(url, "detector") as det,
        ):
            pad = "p" * (60 * 1024)
            sent = 0
            with trio.fail_after(60):
                while app.hub.local_counts()["frontend"] == 2:
                    await send(det, {"command": "device.progress", "target": "frontend",
                                     "data": {"seq": sent, "pad": pad}})
                    # Lock-step with the healthy reader: it can never be the one
                    # that falls behind, whatever the machine's speed.
                    message = await receive(healthy)
                    assert message["data"]["seq"] == sent
                    sent += 1
            assert app.hub.local_counts() == {"frontend": 1, "detector": 1}
            # The healthy client goes on receiving, in order, nothing lost.
            for extra in range(5):
                await send(det, {"command": "device.progress", "target": "frontend",
                                 "data": {"seq": sent + extra}})
                assert (await receive(healthy))["data"]["seq"] == sent + extra
            # The stuck client gets what was on the wire, then 1013 with a reason.
            code, reason = await closed_with(stuck)
            assert code == 1013
            assert "outbox overflow" in reason


# -- keepalive (protocol pings, dead peers: see test_hub_dropin.py) -----------------


async def test_client_ping_gets_pong_and_pong_is_not_routed(served: Served) -> None:
    app, live_url = served
    async with connect(live_url, "frontend") as front, connect(live_url, "detector") as det:
        await send(det, {"command": "hub:pong", "target": "frontend"})
        await sync(det)
        await app.hub.publish(BARRIER, {}, target="all")
        assert await until_barrier(front) == []


# -- detector token ------------------------------------------------------------------


async def test_detector_token(settings: Settings) -> None:
    secured = attrs.evolve(settings, detector_ws_token="s3cret")
    async with serving(secured) as (app, url):
        for query, headers in [("", []), ("token=wrong", []), ("", [("X-API-Key", "nope")])]:
            async with connect(url, "detector", query=query, headers=headers) as ws:
                code, reason = await closed_with(ws)
            assert code == 1008 and "token" in reason
        assert app.hub.local_counts()["detector"] == 0
        async with (
            connect(url, "detector", query="token=s3cret") as by_query,
            connect(url, "detector", headers=[("X-API-Key", "s3cret")]) as by_header,
            connect(url, "frontend") as front,  # frontends need no token
        ):
            for ws in (by_query, by_header):
                await sync(ws)
            assert app.hub.local_counts() == {"frontend": 1, "detector": 2}
            await send(by_header, {"command": "detector.status", "target": "frontend"})
            assert (await receive(front))["sender"] == "detector"


# -- counts and logs -----------------------------------------------------------------


async def test_clients_endpoint_counts_per_type(served: Served) -> None:
    _, live_url = served
    async with httpx.AsyncClient(base_url=live_url) as http:
        assert (await http.get("/api/ws/clients")).json() == {
            "frontend": 0, "detector": 0, "total": 0,
            "local": {"frontend": 0, "detector": 0}, "instances": 1, "backplane": "off",
        }
        async with connect(live_url, "frontend"), connect(live_url, "frontend"), connect(
            live_url, "detector"
        ) as det:
            await sync(det)
            body = (await http.get("/api/ws/clients")).json()
            assert (body["frontend"], body["detector"], body["total"]) == (2, 1, 3)
            assert body["local"] == {"frontend": 2, "detector": 1}
        assert (await http.get("/api/ws/clients")).status_code == 200


async def test_connects_and_disconnects_are_logged_with_counts(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    app, live_url = served
    caplog.set_level(logging.INFO, logger="stinercut_svc.hub")
    async with connect(live_url, "detector") as det:
        await sync(det)
    await wait_for(lambda: app.hub.local_counts()["detector"] == 0, "disconnect seen")
    lines = [r.getMessage() for r in caplog.records if r.name == "stinercut_svc.hub"]
    assert any("detector" in line and "connected" in line and "detector=1" in line for line in lines), lines
    assert any("disconnected" in line and "detector=0" in line for line in lines), lines


async def test_client_whose_socket_stays_full_is_dropped_after_the_timeout(
    settings: Settings,
) -> None:
    # A big outbox, so only the stuck socket write can be what drops the client.
    patient = attrs.evolve(settings, ws_ping_interval=0, ws_ping_timeout=0.5,
                           ws_outbox_messages=100_000)
    async with serving(patient) as (app, url):
        async with connect(url, "frontend", message_queue_size=1) as stuck, connect(
            url, "detector"
        ) as det:
            await sync(stuck)
            pad = "p" * 60_000
            with trio.fail_after(30):
                n = 0
                while app.hub.local_counts()["frontend"] == 1:
                    # Paced by the detector's own round trips: enough to fill the
                    # socket buffers, then the writer waits until the timeout.
                    if n < 250:
                        await send(det, {"command": "x", "target": "frontend", "data": {"pad": pad}})
                        n += 1
                    await sync(det)
            code, reason = await closed_with(stuck)
            assert code == 1013 and "not reading" in reason
