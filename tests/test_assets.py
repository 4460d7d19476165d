"""``/api/assets``: type checks on real files, registration, listing, edits, deletion."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from stinercut_svc.context import StinercutApp
from tests.support.media import make_audio, make_clip, make_png
from tests.test_uploads import leftovers, multipart

SVG = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="100">'
    '<text x="10" y="50" id="pax_name">{{name}}</text></svg>'
)
SVG_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    '<svg xmlns="http://www.w3.org/2000/svg"><text>&lol2;</text></svg>'
)
SVG_EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>'
)


@pytest.fixture(scope="session")
def files(media_dir: Path) -> dict[str, Path]:
    folder = media_dir / "assets"
    folder.mkdir(exist_ok=True)
    png = make_png(folder / "logo.png", alpha=True)
    noisy = folder / "noisy.png"
    Image.frombytes("RGBA", (200, 200), bytes(range(256)) * 625).save(noisy, "PNG")
    broken_png = folder / "broken.png"
    broken_png.write_bytes(noisy.read_bytes()[: noisy.stat().st_size // 2])
    jpeg = folder / "logo.jpg"
    Image.new("RGB", (40, 20), "blue").save(jpeg, "JPEG")
    texts = {
        "template.svg": SVG,
        "entity.svg": SVG_ENTITY,
        "external.svg": SVG_EXTERNAL,
        "broken.svg": "<svg xmlns='http://www.w3.org/2000/svg'><text></svg>",
        "html.svg": "<html><body/></html>",
    }
    out = {
        "intro": make_clip(folder / "intro.mp4", seconds=0.5),
        "silent": make_clip(folder / "silent.mp4", seconds=0.5, audio=False),
        "music": make_audio(folder / "music.m4a"),
        "png": png,
        "broken_png": broken_png,
        "jpeg": jpeg,
    }
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
        out[name] = folder / name
    utf16 = folder / "utf16.svg"
    utf16.write_bytes(SVG_EXTERNAL.encode("utf-16"))
    out["utf16.svg"] = utf16
    return out


async def post_asset(client, kind: str, path: Path, **fields: str):  # type: ignore[no-untyped-def]
    body, ctype = multipart(file=(path.name, path.read_bytes()), type=kind, **fields)
    return await client.post("/api/assets", data=body, headers={"Content-Type": ctype})


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("intro", "intro"),
        ("outro", "intro"),
        ("watermark", "png"),
        ("watermark", "jpeg"),
        ("audio", "music"),
        ("audio_freefall", "intro"),  # a video with sound has an audio stream
        ("pax_template", "template.svg"),
    ],
)
async def test_accepted_kinds(client, app: StinercutApp, files, kind: str, name: str) -> None:  # type: ignore[no-untyped-def]
    response = await post_asset(client, kind, files[name])
    assert response.status_code == 201, await response.get_data()
    asset = await response.get_json()
    assert asset["type"] == kind and asset["path"].startswith("uploads/assets/")
    assert asset["name"] == files[name].stem
    stored = app.storage.root / asset["path"]
    assert stored.read_bytes() == files[name].read_bytes()
    if name == "png":
        with Image.open(stored) as image:
            assert image.mode == "RGBA"  # alpha kept
    download = await client.get(f"/api/assets/{asset['uuid']}/file")
    assert download.status_code == 200
    assert await download.get_data() == files[name].read_bytes()


@pytest.mark.parametrize(
    ("kind", "name", "words"),
    [
        ("intro", "music", "only audio"),
        ("outro", "png", "still image"),
        ("watermark", "intro", "image"),
        ("watermark", "broken_png", "truncated"),
        ("watermark", "template.svg", "image"),
        ("audio", "silent", "needs an audio stream"),
        ("audio_freefall", "png", "audio"),
        ("pax_template", "entity.svg", "DOCTYPE"),
        ("pax_template", "external.svg", "DOCTYPE"),
        ("pax_template", "utf16.svg", "UTF-8"),
        ("pax_template", "broken.svg", "well-formed"),
        ("pax_template", "html.svg", "<svg>"),
        ("pax_template", "png", "UTF-8"),
    ],
)
async def test_wrong_kind_is_422_and_leaves_nothing(
    client, app: StinercutApp, files, kind: str, name: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    response = await post_asset(client, kind, files[name])
    error = (await response.get_json())["error"]
    assert response.status_code == 422, error
    assert words in error["message"], error
    folder = app.storage.uploads / "assets"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert leftovers(app.storage.root) == []
    assert (await (await client.get("/api/assets")).get_json())["items"] == []


async def test_form_fields(client, files) -> None:  # type: ignore[no-untyped-def]
    response = await post_asset(client, "watermark", files["png"], name="  Club logo ")
    assert (await response.get_json())["name"] == "Club logo"

    png = (files["png"].name, files["png"].read_bytes())
    for fields, field in [
        ({}, "type"),
        ({"type": "poster"}, "type"),
        ({"type": "watermark", "name": ""}, "name"),
        ({"type": "watermark", "colour": "red"}, "colour"),
    ]:
        body, ctype = multipart(file=png, **fields)
        response = await client.post("/api/assets", data=body, headers={"Content-Type": ctype})
        error = (await response.get_json())["error"]
        assert response.status_code == 422, (fields, error)
        assert field in error["message"], error

    # The same multipart answers as every upload route (see stinercut_svc/uploads.py).
    for body, status, code in [
        (multipart(type="watermark")[0], 400, "no_file"),
        (multipart(file=("logo.png", b""), type="watermark")[0], 400, "empty_file"),
    ]:
        response = await client.post("/api/assets", data=body, headers={"Content-Type": ctype})
        error = (await response.get_json())["error"]
        assert (response.status_code, error["code"]) == (status, code), error

    response = await client.post("/api/assets", data=b"x", headers={"Content-Type": "image/png"})
    assert response.status_code == 415


async def test_register_path(client, app: StinercutApp, files) -> None:  # type: ignore[no-untyped-def]
    shared = app.storage.root / "branding"
    shared.mkdir(parents=True)
    (shared / "outro.mp4").write_bytes(files["intro"].read_bytes())
    response = await client.post(
        "/api/assets", json={"type": "outro", "path": "branding/outro.mp4", "name": "Outro 2026"}
    )
    assert response.status_code == 201
    asset = await response.get_json()
    assert asset["path"] == "branding/outro.mp4" and asset["name"] == "Outro 2026"

    cases = [
        ({"type": "outro", "path": "../etc/passwd"}, 400),
        ({"type": "outro", "path": "/etc/passwd"}, 400),
        ({"type": "outro", "path": "branding/none.mp4"}, 422),
        ({"type": "watermark", "path": "branding/outro.mp4"}, 422),
        ({"type": "trailer", "path": "branding/outro.mp4"}, 422),
        ({"path": "branding/outro.mp4"}, 422),
        ({"type": "outro", "path": "branding/outro.mp4", "x": 1}, 422),
    ]
    for body, status in cases:
        response = await client.post("/api/assets", json=body)
        assert response.status_code == status, body
    assert (shared / "outro.mp4").exists()


async def test_list_get_patch(client, files) -> None:  # type: ignore[no-untyped-def]
    logo = await (await post_asset(client, "watermark", files["png"])).get_json()
    tune = await (await post_asset(client, "audio", files["music"])).get_json()

    items = (await (await client.get("/api/assets")).get_json())["items"]
    assert {a["uuid"] for a in items} == {logo["uuid"], tune["uuid"]}
    items = (await (await client.get("/api/assets?type=audio")).get_json())["items"]
    assert [a["uuid"] for a in items] == [tune["uuid"]]
    assert (await client.get("/api/assets?type=poster")).status_code == 400

    url = f"/api/assets/{logo['uuid']}"
    assert (await (await client.get(url)).get_json())["name"] == "logo"
    body = await (await client.patch(url, json={"name": "New logo"})).get_json()
    assert body["name"] == "New logo" and body["type"] == "watermark"
    for patch in [{}, {"name": ""}, {"name": "x", "type": "intro"}, {"name": None}]:
        assert (await client.patch(url, json=patch)).status_code == 422, patch

    assert (await client.get("/api/assets/nope")).status_code == 400
    missing = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    for call in (client.get, client.delete):
        assert (await call(f"/api/assets/{missing}")).status_code == 404
    assert (await client.get(f"/api/assets/{missing}/file")).status_code == 404


async def test_delete(client, app: StinercutApp, files) -> None:  # type: ignore[no-untyped-def]
    intro = await (await post_asset(client, "intro", files["intro"])).get_json()
    project = await (
        await client.post("/api/projects", json={"name": "p", "settings": {"intro_asset": intro["uuid"]}})
    ).get_json()
    url = f"/api/assets/{intro['uuid']}"

    response = await client.delete(url)
    assert response.status_code == 409
    assert (await response.get_json())["error"]["details"]["projects"] == [project["uuid"]]

    await client.patch(f"/api/projects/{project['uuid']}", json={"settings": {}})
    response = await client.delete(url)
    assert response.status_code == 200 and (await response.get_json())["removed_files"] == 0
    assert (app.storage.root / intro["path"]).exists()

    logo = await (await post_asset(client, "watermark", files["png"])).get_json()
    response = await client.delete(f"/api/assets/{logo['uuid']}?purge_files=1")
    assert (await response.get_json())["removed_files"] == 1
    assert not (app.storage.root / logo["path"]).exists()

    gone = await (await post_asset(client, "watermark", files["png"])).get_json()
    (app.storage.root / gone["path"]).unlink()
    response = await client.get(f"/api/assets/{gone['uuid']}/file")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "file_missing"
