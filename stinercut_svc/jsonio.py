"""JSON answers built straight from plain data, without a second pass.

Routes return the dicts the models' ``to_api()`` build. Returned as a dict, each
answer went through quart-schema's response conversion (a pydantic
``TypeAdapter`` built and run over the whole structure per request) and then the
standard library encoder: about a fifth of a project-detail request's time.
The data is already exactly the documented shape (``tests/test_openapi.py``
checks every answer against ``/openapi.json``, where ``document_response`` keeps
the schemas), so it is encoded once with msgspec and sent as bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Response

_encoder = msgspec.json.Encoder()


def encode(body: Any) -> bytes:
    return _encoder.encode(body)


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` (dicts, lists, str, int, float, bool, None) as an ``application/json`` answer."""
    return Response(_encoder.encode(body), status=status, mimetype="application/json")
