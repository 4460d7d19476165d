"""Request validation and the OpenAPI document (quart-schema, pydantic models).

Routes declare their bodies and query strings with quart-schema's decorators and
pydantic models (``extra="forbid"`` so an unknown field is an error, not silently
dropped). This module serves ``/openapi.json`` (plus ``/docs``) and turns
validation failures into the one error format, naming each offending field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from quart import Quart, Response
from quart_schema import QuartSchema, RequestSchemaValidationError
from quart_schema.validation import QuerystringValidationError

from . import SERVICE_NAME, __version__
from .errors import ApiError, error_response


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def install_openapi(app: Quart) -> None:
    QuartSchema(
        app,
        info={"title": SERVICE_NAME, "version": __version__},
        redoc_ui_path=None,
        scalar_ui_path=None,
        conversion_preference="pydantic",
    )

    @app.errorhandler(RequestSchemaValidationError)
    async def _invalid(error: RequestSchemaValidationError) -> Response:
        if isinstance(error, QuerystringValidationError):
            failure = validation_failure(error.validation_error, "query string", status=400)
        else:
            failure = validation_failure(error.validation_error)
        return error_response(
            failure.status, failure.message, code=failure.code, details=failure.details
        )


def validation_failure(
    error: Exception, where: str = "request body", *, status: int = 422
) -> ApiError:
    """The one answer to input that does not validate: each offending field named."""
    fields = describe_validation_error(error)
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid"
    return ApiError(
        status, f"invalid {where}: {summary}", code="validation_error", details={"fields": fields}
    )


#: pydantic error types whose stock message names a Python class ("Input should be
#: a valid dictionary or instance of ProjectIn"): said in the API's own words instead.
_CLASS_NAMING_ERRORS = {
    "model_type": "Input should be a JSON object",
    "model_attributes_type": "Input should be a JSON object",
    "dataclass_type": "Input should be a JSON object",
    "dataclass_exact_type": "Input should be a JSON object",
    "is_instance_of": "Input has the wrong type",
    "is_subclass_of": "Input has the wrong type",
}


def describe_validation_error(error: Exception) -> list[dict[str, Any]]:
    if isinstance(error, PydanticValidationError):
        return [
            {
                "field": ".".join(str(part) for part in item["loc"]) or "(body)",
                "message": _CLASS_NAMING_ERRORS.get(item["type"], item["msg"]),
            }
            for item in error.errors(include_url=False)
        ]
    # Not pydantic's: its text may be an internal one, so only a generic word.
    return [{"field": "(body)", "message": "the value is not valid here"}]
