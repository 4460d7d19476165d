"""Request validation and the OpenAPI document (quart-schema, pydantic models).

Routes declare their bodies and query strings with quart-schema's decorators and
pydantic models (``extra="forbid"`` so an unknown field is an error, not silently
dropped). This module serves ``/openapi.json`` (the docs page is
:mod:`.routers.docs_ui`) and turns validation failures into the one error format,
naming each offending field.

The document is completed by rule, not route by route (:class:`DocumentProvider`),
so a blueprint added later is documented like the others without extra work:

* tag = the blueprint's name, described by the first line of its module docstring;
* summary = the first line of the view's docstring, or its name in words;
* every operation documents ``500`` and ``503`` in the error format (a bug; the
  database down), and ``404`` when its path has parameters, besides the errors the
  route declares with ``errors(...)``;
* a route without a documented success answer gets a described ``200``, and
  :func:`~.routers.docs.file_response` / :func:`~.routers.docs.upload_form`
  add file answers and ``multipart/form-data`` bodies (binary ``file`` fields).
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from quart import Quart, Response
from quart_schema import DataSource, QuartSchema, RequestSchemaValidationError
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import QuerystringValidationError
from werkzeug.routing import Rule

from . import SERVICE_NAME, __version__
from .errors import ApiError, error_response
from .routers.docs import FILE_RESPONSE_ATTRIBUTE, UPLOAD_FORM_ATTRIBUTE, ErrorOut

#: Errors any operation can answer, whatever the route declares.
COMMON_ERRORS: dict[int, str] = {
    500: "a bug in the service (logged with its traceback), code internal_error",
    503: "the database (or another dependency) is unreachable right now, code "
    "database_unavailable, with Retry-After",
}
_METHODS = ("get", "put", "post", "delete", "patch")


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def install_openapi(app: Quart) -> None:
    from .routers import docs_ui  # the docs page and its bundled assets

    QuartSchema(
        app,
        info={
            "title": SERVICE_NAME,
            "version": __version__,
            "description": "Every error answer has the shape of `ErrorOut`: "
            "`{error: {code, message, details}, detail}`.",
        },
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,  # served from the installed bundle, not a CDN
        conversion_preference="pydantic",
        openapi_provider_class=DocumentProvider,
    )
    app.register_blueprint(docs_ui.blueprint)

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


class DocumentProvider(OpenAPIProvider):
    """quart-schema's document, completed by rule (see the module docstring)."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        used = {
            tag
            for path_item in document["paths"].values()
            for operation in path_item.values()
            for tag in operation.get("tags", ())
        }
        # How a token is sent (the docs page's "Authorize" button); optional, as
        # access control may be off and TRUSTED_NETWORKS need none.
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "an API token (`stinercut tokens create`); not needed while "
                "AUTH_REQUIRED is off or from TRUSTED_NETWORKS",
            }
        }
        document["security"] = [{}, {"bearer": []}]
        document["tags"] = [
            {"name": name, "description": _first_line(sys.modules.get(bp.import_name))}
            for name, bp in self._app.blueprints.items()
            if name in used
        ]
        return document

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        blueprint, _, name = rule.endpoint.rpartition(".")
        for path, path_item in paths.items():
            methods = [m for m in path_item if m in _METHODS]
            for method in methods:
                # quart-schema shares one operation dict (shallowly) between methods.
                operation = path_item[method] = copy.deepcopy(path_item[method])
                suffix = f"_{method}" if len(methods) > 1 else ""
                operation.setdefault("operationId", f"{rule.endpoint.replace('.', '_')}{suffix}")
                components.update(self._complete(operation, func, blueprint, name, path))
        return paths, components

    def _complete(
        self, operation: dict[str, Any], func: Any, blueprint: str, name: str, path: str
    ) -> dict[str, Any]:
        components: dict[str, Any] = {}
        if not operation.get("tags"):
            operation["tags"] = [blueprint or "service"]
        operation["summary"] = _rst_to_markdown(
            operation.get("summary") or name.replace("_", " ").strip().capitalize()
        )
        if operation.get("description"):
            operation["description"] = _rst_to_markdown(operation["description"])
        else:
            operation.pop("description", None)
        if not operation.get("parameters"):
            operation.pop("parameters", None)

        form = getattr(func, UPLOAD_FORM_ATTRIBUTE, None)
        if form is not None:
            body, found = self.build_request_body(form, DataSource.FORM_MULTIPART)
            operation.setdefault("requestBody", {"content": {}})["content"].update(body["content"])
            components.update(found)

        responses: dict[Any, Any] = operation.setdefault("responses", {})
        file_answer = getattr(func, FILE_RESPONSE_ATTRIBUTE, None)
        if file_answer is not None:
            mimetypes, ranges = file_answer
            binary = {"schema": {"type": "string", "format": "binary"}}
            content = {mimetype: binary for mimetype in mimetypes}
            responses[200] = {"description": "the file", "content": content}
            if ranges:
                responses[206] = {
                    "description": "the byte range asked for with `Range` (one range; "
                    "several ranges get the whole file with 200)",
                    "content": content,
                }
        if not any(200 <= int(status) < 300 for status in responses):
            responses[200] = {"description": "success"}

        error_object, found = self.build_response_object(ErrorOut, None)
        components.update(found)
        common = dict(COMMON_ERRORS)
        if "{" in path:
            common[404] = "what the path names does not exist, in the error format"
        for status, meaning in common.items():
            if status not in responses:
                responses[status] = {**copy.deepcopy(error_object), "description": meaning}
        for status, response in responses.items():
            if not response.get("description") or response["description"] == error_object[
                "description"
            ]:
                phrase = HTTPStatus(int(status)).phrase
                is_error = int(status) >= 400
                response["description"] = f"{phrase} (error format)" if is_error else phrase
        operation["responses"] = dict(sorted(responses.items(), key=lambda item: int(item[0])))
        return components


def _first_line(module: Any) -> str:
    doc = inspect.getdoc(module) if module is not None else None
    return _rst_to_markdown(doc.strip().splitlines()[0]) if doc else ""


def _rst_to_markdown(text: str) -> str:
    """Docstrings use reST literals (````x````); the docs page renders Markdown (```x```)."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return re.sub(r":(?:func|class|mod|data|attr|meth):`~?\.*([^`]+)`", r"`\1`", text)
