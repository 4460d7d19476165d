"""Client for the detector daemon's HTTP control API (``DETECTOR_URL``).

The detector is a host-side daemon that imports footage from card readers. Besides
the WebSocket hub it has a small HTTP API (``GET /status``, ``POST /control/…``) so
an operator tool can manage it without a WebSocket; this module calls it through
the app's one shared :class:`httpx.AsyncClient` (connection reuse) and turns every
way the call can fail into an :class:`~stinercut_svc.errors.ApiError`:

* cannot connect → 503 ``detector_unreachable``
* no complete answer within ``timeout`` → 504 ``detector_timeout``
* 401/403 (missing or wrong ``DETECTOR_API_KEY``) → 502 ``detector_auth``
* any other non-2xx, a broken connection or an unreadable body → 502 ``detector_error``

Cancellation: a call runs in the caller's scope; cancelling it (the client went
away, the app shuts down) abandons the HTTP exchange and httpx drops the
connection instead of returning it to the pool.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import httpx
import trio

from .errors import ApiError

DEFAULT_TIMEOUT_S = 5.0
API_KEY_HEADER = "X-API-Key"
_BODY_EXCERPT_CHARS = 300


@attrs.frozen
class DetectorAction:
    """The answer to a control command, as this service reports it."""

    status: str
    message: str

    def to_api(self) -> dict[str, str]:
        return {"status": self.status, "message": self.message}


@attrs.frozen
class DetectorClient:
    """Calls to one detector; cheap to build, holds no connection of its own."""

    http: httpx.AsyncClient
    base_url: str
    api_key: str | None = None
    #: Deadline for one whole exchange (connect, send, answer), in seconds.
    timeout: float = DEFAULT_TIMEOUT_S

    async def status(self) -> Any:
        """The detector's ``GET /status`` document, passed on as it is."""
        response = await self._call("GET", "/status")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._error(
                502,
                "detector_error",
                "the detector answered GET /status with a body that is not JSON",
                response,
            ) from None

    async def restart(self) -> DetectorAction:
        return await self._command("restart", "restarting", "detector restart requested")

    async def enable(self) -> DetectorAction:
        return await self._command("enable", "enabled", "detector enabled")

    async def disable(self) -> DetectorAction:
        return await self._command("disable", "disabled", "detector disabled")

    async def _command(self, action: str, status: str, fallback: str) -> DetectorAction:
        response = await self._call("POST", f"/control/{action}")
        return DetectorAction(status=status, message=_message_of(response) or fallback)

    async def _call(self, method: str, path: str) -> httpx.Response:
        what = f"{method} {path}"
        headers = {API_KEY_HEADER: self.api_key} if self.api_key else {}
        try:
            # httpx's timeout bounds each phase; the trio deadline bounds the
            # whole exchange, so a detector that trickles bytes cannot stall us.
            with trio.fail_after(self.timeout):
                response = await self.http.request(
                    method, f"{self.base_url}{path}", headers=headers, timeout=self.timeout
                )
        except (trio.TooSlowError, httpx.TimeoutException):
            raise ApiError(
                504,
                f"the detector did not answer {what} within {self.timeout:g} s",
                code="detector_timeout",
                details=self._details(),
            ) from None
        except httpx.ConnectError as exc:
            raise ApiError(
                503,
                f"the detector is not reachable at {self.base_url}: {_short(exc)}",
                code="detector_unreachable",
                details=self._details(),
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                502,
                f"the connection to the detector broke during {what}: {_short(exc)}",
                code="detector_error",
                details=self._details(),
            ) from None

        if response.status_code in (401, 403):
            if self.api_key:
                message = (
                    f"the detector refused the API key (HTTP {response.status_code} on {what}): "
                    "DETECTOR_API_KEY does not match the detector's key"
                )
            else:
                message = (
                    f"the detector requires an API key (HTTP {response.status_code} on {what}) "
                    "but DETECTOR_API_KEY is not set"
                )
            raise self._error(502, "detector_auth", message, response)
        if not response.is_success:
            raise self._error(
                502,
                "detector_error",
                f"the detector answered {what} with HTTP {response.status_code}",
                response,
            )
        return response

    def _error(self, status: int, code: str, message: str, response: httpx.Response) -> ApiError:
        details = self._details()
        details["upstream_status"] = response.status_code
        excerpt = response.text[:_BODY_EXCERPT_CHARS].strip()
        if excerpt:
            details["upstream_body"] = excerpt
        return ApiError(status, message, code=code, details=details)

    def _details(self) -> dict[str, Any]:
        return {"detector_url": self.base_url}


def _message_of(response: httpx.Response) -> str | None:
    """The detector's own ``message`` field, when its answer has one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) and message.strip() else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
