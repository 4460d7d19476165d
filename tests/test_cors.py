"""CORS: configured origins get headers (preflight too); others get none."""

from __future__ import annotations

from tests.conftest import TEST_ORIGIN


async def test_allowed_origin_gets_cors_headers(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/", headers={"Origin": TEST_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == TEST_ORIGIN
    assert "Origin" in response.headers["Vary"]


async def test_preflight_for_allowed_origin(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.options(
        "/api/health",
        headers={
            "Origin": TEST_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == TEST_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-api-key"


async def test_other_origin_gets_no_cors_headers(client) -> None:  # type: ignore[no-untyped-def]
    for method in ("get", "options"):
        response = await getattr(client, method)(
            "/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Methods" not in response.headers


async def test_error_answers_carry_cors_headers_too(client) -> None:  # type: ignore[no-untyped-def]
    # Otherwise the browser hides the JSON error from the frontend.
    response = await client.get("/api/nope", headers={"Origin": TEST_ORIGIN})
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == TEST_ORIGIN
