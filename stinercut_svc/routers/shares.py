"""Share links: staff create them for a finished job; customers open them in a browser.

Staff side (``/api/jobs/{uuid}/share…``): create a link with a lifetime, list a job's
links with their state and view counts, revoke one. Customer side (``/s/{token}``):
a small HTML page with a video element and a download button, the video itself
(``Range`` supported, so players can seek) and the download, with no other access:
the token in the path is the credential.

The public pages send ``Referrer-Policy: no-referrer`` (the token must not leak to
other sites through the ``Referer`` header), ``Cache-Control: private, no-store`` on
the page, ``X-Robots-Tag: noindex`` and a content security policy that allows only
this origin's media and the page's inline style.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any, Literal

import trio
from pydantic import BaseModel, Field, ValidationError
from quart import Blueprint, Response, request
from quart_schema import RequestSchemaValidationError, document_request, document_response

from ..context import StinercutApp, current
from ..downloads import serve_file
from ..openapi import StrictModel
from ..services import shares as service
from ..storage import UnsafePathError
from .docs import errors
from .jobs import download_name
from .params import parse_uuid

blueprint = Blueprint("shares", __name__)

PUBLIC_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}
PAGE_CSP = (
    "default-src 'none'; media-src 'self'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class ShareIn(StrictModel):
    expires_in_hours: float = Field(
        default=service.DEFAULT_HOURS,
        gt=0,
        le=service.MAX_HOURS,
        description="lifetime of the link (default a week, at most a year)",
    )


class ShareOut(BaseModel):
    uuid: str
    job_uuid: str
    state: Literal["active", "expired", "revoked"]
    created_at: str
    expires_at: str
    revoked_at: str | None
    views: int
    last_viewed_at: str | None


class ShareCreatedOut(ShareOut):
    token: str = Field(description="shown only in this answer; only its hash is stored")
    url: str = Field(description="the page to send to the customer")


class ShareListOut(BaseModel):
    shares: list[ShareOut]


def public_base(app: StinercutApp) -> str:
    """``PUBLIC_BASE_URL`` when set (the address customers reach), else this request's."""
    configured = app.settings.public_base_url
    return (configured or request.host_url).rstrip("/")


# --- staff ---------------------------------------------------------------------------


@blueprint.post("/api/jobs/<uuid>/share")
@document_request(ShareIn)
@document_response(ShareCreatedOut, 201)
@errors(400, 404, 409, 422)
async def create_share(uuid: str) -> tuple[dict[str, Any], int]:
    """A new expiring link to the job's finished output (the token is shown once).

    The body is optional: without one the link lasts the default week."""
    app = current()
    data = await _share_body()
    view, token = await app.db.run(
        partial(service.create, job_uuid=parse_uuid(uuid), hours=data.expires_in_hours)
    )
    return {**view, "token": token, "url": f"{public_base(app)}/s/{token}"}, 201


@blueprint.get("/api/jobs/<uuid>/shares")
@document_response(ShareListOut)
@errors(400, 404)
async def list_shares(uuid: str) -> dict[str, Any]:
    """The job's links (without tokens), oldest first."""
    shares = await current().db.run(partial(service.list_for_job, job_uuid=parse_uuid(uuid)))
    return {"shares": shares}


@blueprint.delete("/api/jobs/<uuid>/shares/<share_uuid>")
@document_response(ShareOut)
@errors(400, 404)
async def revoke_share(uuid: str, share_uuid: str) -> dict[str, Any]:
    """Withdraw a link at once (its page and files answer 404 from now on)."""
    return await current().db.run(
        partial(service.revoke, job_uuid=parse_uuid(uuid), share_uuid=parse_uuid(share_uuid))
    )


async def _share_body() -> ShareIn:
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        return ShareIn()
    try:
        return ShareIn.model_validate(await request.get_json(force=True))
    except ValidationError as exc:
        raise RequestSchemaValidationError(exc) from None


# --- customers -----------------------------------------------------------------------


async def _shared(token: str, *, count_view: bool) -> tuple[service.Shared, Any]:
    app = current()
    shared = await app.db.run(partial(service.resolve, token=token, count_view=count_view))
    try:
        path = app.storage.resolve(shared.output_path)
    except UnsafePathError:
        raise service.ShareNotFound("the video is no longer available") from None
    return shared, path


def _wants_html() -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept


@blueprint.get("/s/<token>")
async def share_page(token: str) -> Response:
    """The customer's page: the video, a download button, when the link expires."""
    try:
        shared, path = await _shared(token, count_view=True)
        exists = await trio.to_thread.run_sync(path.is_file)  # storage may be a network mount
    except service.ShareNotFound:
        if not _wants_html():
            raise
        return _page(_GONE_BODY, "Video not available", status=404)
    if not exists:
        return _page(_GONE_BODY, "Video not available", status=404)
    title = html.escape(shared.project_name)
    body = _PLAYER_BODY.format(
        title=title,
        video=f"/s/{html.escape(token)}/video",
        download=f"/s/{html.escape(token)}/download",
        expires=html.escape(shared.expires_at.strftime("%Y-%m-%d %H:%M UTC")),
    )
    return _page(body, title)


@blueprint.get("/s/<token>/video")
async def share_video(token: str) -> Response:
    """The video for the page's player (inline; ``Range`` for seeking)."""
    _shared_file, path = await _shared(token, count_view=False)
    response = await serve_file(path, request, download_name=None, mimetype="video/mp4")
    response.headers.update(PUBLIC_HEADERS)
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@blueprint.get("/s/<token>/download")
async def share_download(token: str) -> Response:
    """The video as a download, named after the project."""
    shared, path = await _shared(token, count_view=True)
    name = download_name(shared.project_name, path.stem, shared.completed_at)
    response = await serve_file(path, request, download_name=name, mimetype="video/mp4")
    response.headers.update(PUBLIC_HEADERS)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _page(body: str, title: str, *, status: int = 200) -> Response:
    document = _PAGE.format(title=title, body=body)
    response = Response(document, status=status, mimetype="text/html")
    response.headers.update(PUBLIC_HEADERS)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>
  body {{ margin: 0; font-family: system-ui, sans-serif; background: #111; color: #eee; }}
  main {{ max-width: 960px; margin: 0 auto; padding: 1rem; }}
  video {{ width: 100%; max-height: 80vh; background: #000; border-radius: 6px; }}
  a.button {{ display: inline-block; margin-top: 1rem; padding: .7rem 1.4rem;
             background: #2a7de1; color: #fff; border-radius: 6px; text-decoration: none; }}
  p.small {{ color: #999; font-size: .85rem; }}
</style>
</head>
<body><main>{body}</main></body>
</html>
"""

_PLAYER_BODY = """<h1>{title}</h1>
<video id="video" controls preload="metadata" playsinline src="{video}"></video>
<div><a class="button" id="download" href="{download}" download>Download the video</a></div>
<p class="small">This link works until {expires}.</p>"""

_GONE_BODY = """<h1>Video not available</h1>
<p>This link has expired or was withdrawn. Please ask the skydiving centre for a new one.</p>"""
