"""CORS for the configured frontend origins, preflight included.

Only origins listed in ``CORS_ORIGINS`` get CORS headers (``*`` allows any, for
development); a request from any other origin is still served, but the browser
will not hand the answer to the page, which is the point.
"""

from __future__ import annotations

from quart import Quart, Response, request

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
MAX_AGE_S = "600"


def install_cors(app: Quart, origins: tuple[str, ...]) -> None:
    allowed = frozenset(origins)
    allow_any = "*" in allowed

    def origin_allowed(origin: str | None) -> bool:
        return origin is not None and (allow_any or origin.rstrip("/") in allowed)

    @app.before_request
    async def _preflight() -> Response | None:
        # Answer preflights here, before routing, so every route gets them (and an
        # unknown route still 404s for real requests).
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        response = Response("", status=204)
        origin = request.headers.get("Origin")
        if origin_allowed(origin):
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            requested = request.headers.get("Access-Control-Request-Headers")
            if requested:
                response.headers["Access-Control-Allow-Headers"] = requested
            response.headers["Access-Control-Max-Age"] = MAX_AGE_S
        return response

    @app.after_request
    async def _headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin_allowed(origin):
            assert origin is not None
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = (
                "Content-Disposition, Content-Range, Accept-Ranges, X-Request-ID"
            )
            response.vary.add("Origin")
        return response
