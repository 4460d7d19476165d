"""``/docs``: the interactive API docs (Swagger UI), served entirely by this service.

A centre's network often has no internet access, so the page loads nothing from
a CDN: the Swagger UI files come from the installed ``swagger-ui-bundle``
package under ``/docs/static/``.

That bundle is Swagger UI 4, which renders OpenAPI 3.0 documents only, while
quart-schema writes 3.1 (``/openapi.json``, the contract the tests check answers
against, stays 3.1). The page therefore reads ``/docs/openapi.json``: the same
document restated in 3.0 terms (``anyOf [X, null]`` → ``X`` + ``nullable``,
``const`` → one-value ``enum``, numeric ``exclusiveMinimum`` → the boolean form).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, current_app, request, url_for
from quart_schema import hide
from swagger_ui_bundle import swagger_ui_path

from .. import SERVICE_NAME
from ..downloads import serve_file
from ..errors import ApiError

blueprint = Blueprint("docs", __name__)

#: The files the page uses; nothing else of the package is reachable.
ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-16x16.png",
        "favicon-32x32.png",
        "oauth2-redirect.html",
    }
)
ASSET_DIR = Path(str(swagger_ui_path))

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} API</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{bundle}"></script>
  <script src="{preset}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "BaseLayout",
      oauth2RedirectUrl: new URL("{redirect}", window.location.href).href
    }});
  </script>
</body>
</html>
"""


@blueprint.get("/docs")
@hide
async def page() -> Response:
    def asset(name: str) -> str:
        return url_for("docs.static_asset", name=name)

    html = PAGE.format(
        title=SERVICE_NAME,
        css=asset("swagger-ui.css"),
        icon=asset("favicon-32x32.png"),
        bundle=asset("swagger-ui-bundle.js"),
        preset=asset("swagger-ui-standalone-preset.js"),
        redirect=asset("oauth2-redirect.html"),
        spec=url_for("docs.openapi_30"),
    )
    return Response(html, mimetype="text/html")


@blueprint.get("/docs/static/<name>")
@hide
async def static_asset(name: str) -> Response:
    if name not in ASSETS:
        raise ApiError(404, f"no docs asset named {name[:80]!r}", code="not_found")
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = await serve_file(ASSET_DIR / name, request, download_name=None, mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@blueprint.get("/docs/openapi.json")
@hide
async def openapi_30() -> Response:
    document = current_app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    return current_app.json.response(as_openapi_30(document))  # type: ignore[return-value]


def as_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (OpenAPI 3.1) restated for a 3.0 reader (a new dict)."""
    converted = _convert(document)
    converted["openapi"] = "3.0.3"
    return converted  # type: ignore[no-any-return]


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in ("anyOf", "oneOf"):  # before the options themselves are converted
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            del out[key]
            out["nullable"] = True
            if len(rest) == 1 and "$ref" in rest[0]:
                out["allOf"] = rest  # 3.0 ignores siblings of a bare $ref
            elif len(rest) == 1:
                out = {**rest[0], **out}
            elif rest:
                out[key] = rest
    out = {key: _convert(value) for key, value in out.items()}
    kind = out.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) == 1:
            out["type"] = kinds[0]
        else:  # several types: 3.0 has no way to say it; leave the schema open
            del out["type"]
    elif kind == "null":
        del out["type"]
        out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(bound)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[plain] = value
            out[bound] = True
    if isinstance(out.get("examples"), list) and "content" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    return out
