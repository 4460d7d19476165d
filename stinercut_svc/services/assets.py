"""Branding assets: type checks on the file, rows, and safe deletion.

What each type must be (else 422 ``invalid_media`` naming the problem):

* ``intro`` / ``outro``: a video (same rules as timeline clips);
* ``watermark``: a PNG, JPEG or WebP image; the file is stored untouched, so a
  PNG's alpha channel is kept;
* ``audio`` / ``audio_freefall``: any media file with an audio stream;
* ``pax_template``: an SVG document in UTF-8 that parses as XML, with no
  DOCTYPE and no entity declarations (refused before parsing, so neither
  external entities nor entity expansion can happen).

Uploaded asset files go to ``uploads/assets/``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from typing import Any

import trio
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from quart import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import StinercutApp
from ..errors import ApiError
from ..models import Asset, AssetType, Project, Video
from ..openapi import StrictModel, validation_failure
from ..storage import Storage
from ..uploads import receive_upload
from .cleanup import resolve_stored
from .fields import Name
from .projects import Removal
from .videos import probe_clip, probe_media, resolve_client_file

ASSET_FOLDER = "assets"
SVG_MAX_BYTES = 5 * 1024 * 1024
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
IMAGE_MAX_PIXELS = 40_000_000
_DTD_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


class AssetForm(StrictModel):
    """The text fields of a multipart asset upload."""

    type: AssetType
    name: Name | None = None


def _invalid(message: str) -> ApiError:
    return ApiError(422, message, code="invalid_media", details={"field": "file"})


def check_image(path: Path) -> dict[str, Any]:
    """Decode the whole image once (catches truncation); refuse non-images."""
    try:
        with Image.open(path) as image:
            if image.format not in IMAGE_FORMATS:
                raise _invalid(
                    f"a watermark must be a PNG, JPEG or WebP image, not {image.format or 'this'}"
                )
            width, height = image.size
            if width * height > IMAGE_MAX_PIXELS:
                raise _invalid(f"the image is too large ({width}x{height} pixels)")
            image.load()
            return {"format": image.format, "mode": image.mode, "has_alpha": "A" in image.mode}
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise _invalid("a watermark must be an image; this file is not one Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _invalid(f"the image is damaged or truncated: {exc}") from None


def check_svg(path: Path) -> None:
    if path.stat().st_size > SVG_MAX_BYTES:
        raise _invalid(f"an SVG template may be at most {SVG_MAX_BYTES} bytes")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid("an SVG template must be UTF-8 text") from None
    if "\x00" in text:
        raise _invalid("an SVG template must be UTF-8 text")
    if _DTD_RE.search(text):
        raise _invalid("SVG templates may not contain a DOCTYPE or entity declarations")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise _invalid(f"the SVG template is not well-formed XML: {exc}") from None
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise _invalid(f"the root element must be <svg>, not <{root.tag}>")


async def check_asset_file(app: StinercutApp, kind: AssetType, path: Path) -> None:
    if kind in (AssetType.INTRO, AssetType.OUTRO):
        await probe_clip(app, path)
    elif kind in (AssetType.AUDIO, AssetType.AUDIO_FREEFALL):
        info = await probe_media(app, path, "audio file")
        if info.audio is None:
            raise _invalid(f"an {kind.value} asset needs an audio stream; this file has none")
    elif kind is AssetType.WATERMARK:
        await trio.to_thread.run_sync(check_image, path)
    else:
        await trio.to_thread.run_sync(check_svg, path)


def find_asset(session: Session, uuid: str) -> Asset:
    asset = session.scalars(select(Asset).where(Asset.uuid == uuid)).one_or_none()
    if asset is None:
        raise ApiError.not_found("asset", uuid)
    return asset


def create_asset(session: Session, *, kind: AssetType, name: str, path: str) -> dict[str, Any]:
    asset = Asset(type=kind, name=name, path=path)
    session.add(asset)
    session.flush()
    return asset.to_api()


def list_assets(session: Session, kind: AssetType | None) -> dict[str, Any]:
    query = select(Asset).order_by(Asset.created_at.desc(), Asset.id.desc())
    if kind is not None:
        query = query.where(Asset.type == kind)
    return {"items": [a.to_api() for a in session.scalars(query)]}


def rename_asset(session: Session, uuid: str, name: str) -> dict[str, Any]:
    asset = find_asset(session, uuid)
    asset.name = name
    session.flush()
    return asset.to_api()


def asset_file(session: Session, storage: Storage, uuid: str) -> Path:
    asset = find_asset(session, uuid)
    path = resolve_stored(storage, asset.path)
    if path is None or not path.is_file():
        raise ApiError(404, f"the file of asset {uuid} is missing", code="file_missing")
    return path


def delete_asset(session: Session, storage: Storage, uuid: str, *, purge: bool) -> Removal:
    asset = find_asset(session, uuid)
    users = list(session.scalars(select(Project.uuid).where(Project.settings.contains(uuid))))
    if users:
        raise ApiError.conflict(
            f"asset {uuid} is used in the settings of {len(users)} project(s)", projects=users
        )
    files: list[Path] = []
    if purge and asset.path.startswith("uploads/"):
        shared = session.scalar(
            select(Asset.id).where(Asset.path == asset.path, Asset.id != asset.id).limit(1)
        ) or session.scalar(select(Video.id).where(Video.path == asset.path).limit(1))
        path = None if shared else resolve_stored(storage, asset.path)
        if path is not None:
            files.append(path)
    session.delete(asset)
    return Removal(tuple(files))


async def upload_asset(app: StinercutApp, request: Request) -> dict[str, Any]:
    directory = app.storage.uploads / ASSET_FOLDER
    async with receive_upload(request, directory, fields=frozenset({"type", "name"})) as upload:
        try:
            form = AssetForm.model_validate(upload.fields)
        except ValidationError as exc:
            raise validation_failure(exc, "form") from None
        await check_asset_file(app, form.type, upload.path)
        final = await upload.keep()
        name = form.name or Path(upload.filename).stem or upload.filename
        return await app.db.run(
            partial(
                create_asset, kind=form.type, name=name, path=app.storage.relative(final)
            )
        )


async def register_asset(
    app: StinercutApp, *, kind: AssetType, name: str | None, relative: str
) -> dict[str, Any]:
    source = await resolve_client_file(app.storage, relative)
    await check_asset_file(app, kind, source)
    return await app.db.run(
        partial(
            create_asset,
            kind=kind,
            name=name or source.stem or source.name,
            path=app.storage.relative(source),
        )
    )
