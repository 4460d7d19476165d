"""Access control against the real server (``AUTH_REQUIRED`` on): REST and the hub.

Every route of the table is called over real HTTP with no token, a wrong token
and each role's token: 401 (with ``detail`` and ``WWW-Authenticate: Bearer``)
without a valid token, 403 (with ``detail``) below the route's role, anything
else at or above it. Trusted networks are flipped with ``TRUSTED_NETWORKS``
(the tests' client is always 127.0.0.1). The hub is tested on both paths:
the one-port server's own handshake and the Quart route.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from stinercut_svc.app import create_app
from stinercut_svc.auth import tokens
from stinercut_svc.auth.roles import OPEN, ROUTE_ROLES, Role
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from tests.support.server import running_server

STEP_S = 5.0
#: Not the tests' address: 127.0.0.1 is untrusted unless a test says otherwise.
ELSEWHERE = (ipaddress.ip_network("10.99.0.0/16"),)
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return attrs.evolve(settings, auth_required=True, trusted_networks=ELSEWHERE)


async def make_token(app: StinercutApp, role: Role, name: str | None = None) -> str:
    await app.schema_ready.wait()
    _, token = await app.db.run(
        lambda session: tokens.create_token(session, name or f"{role}-{uuid.uuid4().hex[:6]}", role)
    )
    return token


@pytest.fixture
async def role_tokens(app: StinercutApp) -> dict[Role, str]:
    return {role: await make_token(app, role) for role in Role}


def concrete(rule: str) -> str:
    """A URL for a rule: a fresh uuid for every variable, a real setting key for ``<key>``."""
    rule = rule.replace("<key>", "render.output_crf")
    return re.sub(r"<[^>]+>", lambda _: str(uuid.uuid4()), rule)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_every_route_asks_for_its_role(
    app: StinercutApp, live_url: str, role_tokens: dict[Role, str]
) -> None:
    checked = 0
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        for (method, rule), needed in sorted(ROUTE_ROLES.items()):
            if rule == "/ws":
                continue  # WebSocket only: the hub tests below
            url = concrete(rule)
            body = {} if method in ("POST", "PUT", "PATCH") else None

            async def call(headers: dict[str, str]) -> httpx.Response:
                return await http.request(method, url, json=body, headers=headers)  # noqa: B023

            if needed == OPEN:
                answer = await call({})
                assert answer.status_code not in (401, 403), (method, rule, answer.text)
                continue
            for headers, code in (({}, "authentication_required"),
                                  (bearer("stc_" + "x" * 43), "invalid_token"),
                                  ({"Authorization": "Basic dXNlcjpwdw=="}, "authentication_required")):
                answer = await call(headers)
                assert answer.status_code == 401, (method, rule, headers, answer.text)
                assert answer.headers["WWW-Authenticate"] == "Bearer"
                error = answer.json()
                assert error["error"]["code"] == code and error["detail"], error
            for role, token in role_tokens.items():
                answer = await call(bearer(token))
                if role.allows(needed):  # type: ignore[arg-type]
                    assert answer.status_code not in (401, 403), (method, rule, role, answer.text)
                    assert answer.status_code < 500 or answer.status_code in (503, 504), answer.text
                else:
                    assert answer.status_code == 403, (method, rule, role, answer.text)
                    error = answer.json()
                    assert error["error"]["code"] == "insufficient_role"
                    assert error["error"]["details"] == {"required_role": needed, "role": role}
                    assert needed in error["detail"]
                checked += 1
    assert checked >= 3 * 30  # the table has ~40 guarded routes


async def test_open_routes_preflight_and_viewer_reads(
    app: StinercutApp, live_url: str, role_tokens: dict[Role, str]
) -> None:
    async with httpx.AsyncClient(base_url=live_url) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/api/health")).status_code in (200, 503)
        # A CORS preflight carries no credentials: answered, not refused.
        preflight = await http.options("/api/projects", headers={
            "Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204
        # The 401 itself carries the CORS headers, so a browser can read its detail.
        denied = await http.get("/api/projects", headers={"Origin": "http://localhost:8080"})
        assert denied.status_code == 401
        assert denied.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
        viewer = bearer(role_tokens[Role.VIEWER])
        assert (await http.get("/api/projects", headers=viewer)).status_code == 200
        created = await http.post("/api/projects", json={"name": "x"}, headers=viewer)
        assert created.status_code == 403
        operator = bearer(role_tokens[Role.OPERATOR])
        created = await http.post("/api/projects", json={"name": "x"}, headers=operator)
        assert created.status_code == 201
        project = created.json()["uuid"]
        assert (await http.delete(f"/api/projects/{project}", headers=operator)).status_code == 403
        admin = bearer(role_tokens[Role.ADMIN])
        assert (await http.delete(f"/api/projects/{project}", headers=admin)).status_code == 200
        # 404 for a path no route matches: the router answers, no token asked.
        assert (await http.get("/api/nothing-here")).status_code == 404


async def test_revoked_token_is_refused_and_last_use_recorded(
    app: StinercutApp, live_url: str
) -> None:
    token = await make_token(app, Role.VIEWER, "ci")
    async with httpx.AsyncClient(base_url=live_url) as http:
        assert (await http.get("/api/jobs", headers=bearer(token))).status_code == 200
        rows = await app.db.run(tokens.list_tokens)
        assert rows[-1].name == "ci" and rows[-1].last_used_at is not None
        assert rows[-1].token_hash == tokens.hash_token(token) != token  # only the hash is kept
        await app.db.run(lambda session: tokens.revoke_token(session, "ci"))
        answer = await http.get("/api/jobs", headers=bearer(token))
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(("trusted", "needs_token"), [(LOOPBACK, False), (ELSEWHERE, True)])
async def test_trusted_networks_need_no_token(
    settings: Settings, trusted: tuple[Any, ...], needs_token: bool
) -> None:
    app = create_app(attrs.evolve(settings, trusted_networks=trusted))
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        await app.schema_ready.wait()
        created = await http.post("/api/projects", json={"name": "lan"})
        assert created.status_code == (401 if needs_token else 201), created.text
        listing = await http.get("/api/projects")
        assert listing.status_code == (401 if needs_token else 200)
        # X-Forwarded-For is not believed: it cannot make an outsider trusted.
        spoofed = await http.get("/api/projects", headers={"X-Forwarded-For": "10.99.0.1"})
        assert spoofed.status_code == (401 if needs_token else 200)
        async with hub(url) as ws:  # the frontend connects as before, no token
            if needs_token:
                assert await closed_with(ws) == (1008, "authentication required")
            else:
                await ping(ws)


async def test_auth_is_off_by_default(settings: Settings) -> None:
    assert Settings.from_env({}).auth_required is False
    app = create_app(attrs.evolve(settings, auth_required=False, trusted_networks=()))
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
        await app.schema_ready.wait()
        assert (await http.post("/api/projects", json={"name": "open"})).status_code == 201
        async with hub(url) as ws:
            await send(ws, {"command": "x:y", "target": "backend"})
            await ping(ws)  # nothing refused


# -- the hub --------------------------------------------------------------------------


@asynccontextmanager
async def hub(
    url: str, query: str = "", subprotocols: list[str] | None = None
) -> AsyncIterator[WebSocketConnection]:
    ws_url = url.replace("http://", "ws://", 1) + "/ws" + (f"?{query}" if query else "")
    async with open_websocket_url(ws_url, subprotocols=subprotocols or []) as ws:
        yield ws


async def send(ws: WebSocketConnection, message: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(message))


async def receive(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(STEP_S):
        return json.loads(await ws.get_message())  # type: ignore[no-any-return]


async def ping(ws: WebSocketConnection) -> None:
    """Round trip: everything ``ws`` sent before has been handled."""
    await send(ws, {"command": "hub:ping"})
    assert (await receive(ws))["command"] == "hub:pong"


async def closed_with(ws: WebSocketConnection) -> tuple[int, str]:
    with trio.fail_after(STEP_S):
        try:
            message = await ws.get_message()
        except ConnectionClosed as closed:
            reason = closed.reason
            assert reason is not None
            return reason.code, (reason.reason or "").split(":")[0]
    raise AssertionError(f"expected a close, got {message!r}")


async def test_hub_viewer_receives_but_may_only_talk_to_frontends(
    app: StinercutApp, live_url: str, role_tokens: dict[Role, str]
) -> None:
    viewer, operator = role_tokens[Role.VIEWER], role_tokens[Role.OPERATOR]
    async with (
        hub(live_url, subprotocols=[f"bearer.{viewer}"]) as watcher,
        hub(live_url, f"access_token={operator}") as peer,
        hub(live_url, f"client_type=detector&access_token={operator}") as detector,
    ):
        assert watcher.subprotocol == f"bearer.{viewer}"  # selected, as browsers require
        for ws in (watcher, peer, detector):
            await ping(ws)
        await app.hub.publish("job:progress", {"job": "j", "progress": 5}, target="frontend")
        assert (await receive(watcher))["command"] == "job:progress"
        assert (await receive(peer))["command"] == "job:progress"

        for target in ("backend", "detector", "all", None):
            message: dict[str, Any] = {"command": "detector:restart", "data": {}}
            if target is not None:
                message["target"] = target
            await send(watcher, message)
            error = await receive(watcher)
            assert error["command"] == "hub:error", error
            assert error["data"]["code"] == "forbidden"
            assert repr(target or "all") in error["data"]["error"]
        # To other frontends a viewer may talk; the operator's frontend receives it.
        await send(watcher, {"command": "note:hello", "target": "frontend"})
        assert (await receive(peer))["command"] == "note:hello"
        # Nothing the viewer sent reached the detector; the operator's message does.
        await send(peer, {"command": "detector:status", "target": "detector"})
        assert (await receive(detector))["command"] == "detector:status"
        await ping(watcher)


@pytest.mark.parametrize(
    ("query", "protocols", "why"),
    [
        ("", None, "authentication required"),
        ("access_token=stc_nope", None, "the token is unknown or revoked"),
        ("", ["bearer.stc_nope"], "the token is unknown or revoked"),
        ("client_type=detector&access_token={viewer}", None, "this needs the operator role; the token has viewer"),
    ],
)
async def test_hub_refusals_are_1008_with_a_reason(
    live_url: str, role_tokens: dict[Role, str], query: str, protocols: list[str] | None,
    why: str,
) -> None:
    async with hub(live_url, query.format(viewer=role_tokens[Role.VIEWER]), protocols) as ws:
        code, reason = await closed_with(ws)
    assert (code, reason) == (1008, why.split(":")[0])


async def test_detector_token_keeps_working_under_auth(settings: Settings) -> None:
    app = create_app(attrs.evolve(settings, detector_ws_token="det-secret"))
    async with running_server(app) as url:
        async with hub(url, "client_type=detector&token=det-secret") as detector:
            await ping(detector)
            await send(detector, {"command": "qr:found", "target": "frontend"})
            await ping(detector)
        async with hub(url, "client_type=detector&token=wrong") as detector:
            assert (await closed_with(detector))[0] == 1008


async def test_quart_route_applies_the_same_rules(
    app: StinercutApp, role_tokens: dict[Role, str]
) -> None:
    """The fallback ``/ws`` route (an upgrade on a kept-alive connection, or the
    hypercorn CLI): Quart's test client goes through it, from a given address."""
    client = app.test_client()
    viewer = role_tokens[Role.VIEWER]
    outsider = {"client": ("192.0.2.7", 40000)}
    async with client.websocket("/ws", scope_base=outsider) as ws:
        with pytest.raises(Exception) as refused:
            await ws.receive()
        assert "1008" in repr(refused.value) or "authentication" in repr(refused.value)
    # (Quart's test client drops its subprotocols argument: the scope carries them.)
    async with client.websocket(
        "/ws", scope_base={**outsider, "subprotocols": [f"bearer.{viewer}"]}
    ) as ws:
        await ws.send(json.dumps({"command": "x:y", "target": "backend"}))
        with trio.fail_after(STEP_S):
            error = json.loads(await ws.receive())
        assert error["command"] == "hub:error" and error["data"]["code"] == "forbidden"
    trusted = {"client": ("10.99.1.2", 40000)}  # inside TRUSTED_NETWORKS: no token
    async with client.websocket("/ws", scope_base=trusted) as ws:
        await ws.send(json.dumps({"command": "x:y", "target": "backend"}))
        await ws.send(json.dumps({"command": "hub:ping"}))
        with trio.fail_after(STEP_S):
            assert json.loads(await ws.receive())["command"] == "hub:pong"


def test_trusted_networks_setting(tmp_path: Path) -> None:
    from stinercut_svc.config import ConfigError

    parsed = Settings.from_env({"TRUSTED_NETWORKS": " 10.0.0.0/8, 192.168.1.5 ,::1/128",
                                "AUTH_REQUIRED": "true", "DATA_DIR": str(tmp_path)})
    assert parsed.auth_required is True
    assert [str(n) for n in parsed.trusted_networks] == ["10.0.0.0/8", "192.168.1.5/32", "::1/128"]
    for bad in ("10.0.0.1/8", "lan", "300.1.1.1/32"):
        with pytest.raises(ConfigError, match="TRUSTED_NETWORKS"):
            Settings.from_env({"TRUSTED_NETWORKS": bad, "DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="AUTH_REQUIRED"):
        Settings.from_env({"AUTH_REQUIRED": "maybe", "DATA_DIR": str(tmp_path)})
