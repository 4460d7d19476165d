"""Every error answer uses the one JSON format."""

from __future__ import annotations

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.errors import ApiError
from stinercut_svc.media.runner import ToolMissingError


def _assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_unknown_route_is_json_404(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/api/does-not-exist")
    assert response.status_code == 404
    body = await response.get_json()
    _assert_error_shape(body, "not_found")
    assert "/api/does-not-exist" in body["error"]["message"]


async def test_wrong_method_is_json_405_with_allow(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.delete("/api/health")
    assert response.status_code == 405
    body = await response.get_json()
    _assert_error_shape(body, "method_not_allowed")
    assert "GET" in body["error"]["details"]["allowed"]
    assert "GET" in response.headers["Allow"]


async def test_api_error_and_unexpected_error(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals")

    @app.get("/teapot")
    async def teapot() -> str:
        raise ApiError(409, "already rendering", details={"job": "x"})

    @app.get("/no-tools")
    async def no_tools() -> str:
        raise ToolMissingError("ffprobe is not installed", returncode=None, stderr_tail="")

    async with app.test_app():
        client = app.test_client()
        response = await client.get("/boom")
        assert response.status_code == 500
        body = await response.get_json()
        _assert_error_shape(body, "internal_error")
        assert "secret" not in body["error"]["message"]

        response = await client.get("/teapot")
        assert response.status_code == 409
        body = await response.get_json()
        _assert_error_shape(body, "conflict")
        assert body["error"]["details"] == {"job": "x"}

        # A missing ffmpeg/ffprobe is the deployment's fault: 503, wherever it surfaces.
        response = await client.get("/no-tools")
        assert response.status_code == 503
        body = await response.get_json()
        _assert_error_shape(body, "tool_missing")
        assert "ffprobe is not installed" in body["error"]["message"]


async def test_validation_errors_name_each_field(settings: Settings) -> None:
    from quart_schema import validate_querystring, validate_request

    from stinercut_svc.openapi import StrictModel

    class Body(StrictModel):
        name: str
        count: int = 1

    class Query(StrictModel):
        limit: int = 10

    app = create_app(settings)

    @app.post("/things")
    @validate_request(Body)
    async def things(data: Body) -> dict:
        return {"name": data.name}

    @app.get("/things")
    @validate_querystring(Query)
    async def list_things(query_args: Query) -> dict:
        return {"limit": query_args.limit}

    async with app.test_app():
        client = app.test_client()
        response = await client.post("/things", json={"count": "many", "extra": 1})
        assert response.status_code == 422
        body = await response.get_json()
        _assert_error_shape(body, "validation_error")
        fields = {f["field"] for f in body["error"]["details"]["fields"]}
        assert fields == {"name", "count", "extra"}

        response = await client.post(
            "/things", data="{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        _assert_error_shape(await response.get_json(), "invalid_json")

        response = await client.get("/things?limit=lots")
        assert response.status_code == 400
        body = await response.get_json()
        assert body["error"]["details"]["fields"][0]["field"] == "limit"

        assert (await client.get("/things?limit=3")).status_code == 200
        spec = await (await client.get("/openapi.json")).get_json()
        assert "/things" in spec["paths"]
