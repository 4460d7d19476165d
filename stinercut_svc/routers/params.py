"""Turning URL parts and hand-read bodies into checked values, in the one error format.

Resource ids in URLs are canonical UUIDs (``8-4-4-4-12`` hex digits). A value of
another shape is answered with **400** ``invalid_uuid`` naming the parameter,
before any database work; a well-formed UUID that matches nothing is **404**.
"""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from quart import request

from ..errors import ApiError
from ..openapi import validation_failure

M = TypeVar("M", bound=BaseModel)

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def parse_uuid(value: str, parameter: str = "uuid") -> str:
    """The canonical (lower-case) form of a UUID from the URL, or 400."""
    if not _UUID_RE.match(value):
        raise ApiError(
            400,
            f"{parameter} {value[:80]!r} is not a UUID",
            code="invalid_uuid",
            details={"field": parameter},
        )
    return value.lower()


async def json_model(model: type[M]) -> M:
    """Read and validate a JSON body for routes that also accept multipart.

    Same answers as quart-schema's ``validate_request``: invalid JSON → 400,
    fields that do not validate → 422 with each field named.
    """
    data = await request.get_json()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failure(exc) from None
