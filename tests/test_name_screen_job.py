"""The name screen in real render jobs: API → job → ffmpeg → the output file.

A pax_template asset (animated format), a font under the storage root and a
sound asset; the project's name is the passenger's. The output must hold the
name screen between the intro slot and the clip, for exactly its duration, and
a name the font cannot draw must fail the job with the character named and
nothing left in temp/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from stinercut_svc.context import StinercutApp
from tests import test_render_helpers as helpers
from tests.support.processes import media_children

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FRAME = 1 / 25

CONFIG = {
    "duration": 1.2,
    "layers": [
        {"id": "band", "group_id": "band"},
        {
            "id": "name",
            "type": "text",
            "content": "{{pax_name}}",
            "text_style": {
                "font_path": "fonts/Brand.ttf",
                "font_size": 160,
                "fill": "#ffffff",
                "anchor": "middle",
            },
            "initial": {"x": 960, "y": 420},
            "animations": [
                {
                    "property": "opacity",
                    "easing": "ease-out",
                    "keyframes": [{"time": 0, "value": 0}, {"time": 0.4, "value": 1}],
                }
            ],
        },
    ],
}
TEMPLATE = f"""<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]" height="[[[HEIGHT]]]"
     viewBox="0 0 1920 1080">
  <g id="band"><rect x="0" y="380" width="1920" height="280" fill="#0000ff"/></g>
  <script type="application/json" id="stinercut-animation">{json.dumps(CONFIG)}</script>
</svg>
"""


async def add_project(app: StinercutApp, media_dir: Path, **kwargs: Any) -> str:
    """A project with one black 1 s 320x180 clip (the name screen's tests' canvas)."""
    black = helpers.clip(
        media_dir, "c1s-black-320", seconds=1, size="320x180", color_source="color"
    )
    return await helpers.add_project(app, [black], **kwargs)


async def failed_render(app: StinercutApp, client: Any, project: str, template: str) -> str:
    """Render with the name screen on; the job must fail: its error message."""
    body = {
        "name_screen": {"enabled": True, "template_asset": template},
        "output": {"preset": "ultrafast"},
    }
    job = await helpers.start_render(client, project, body)
    done = await helpers.wait_job(app, job["uuid"])
    assert done["status"] == "failed", done
    return str(done["error_message"])


async def _template(app: StinercutApp, tmp_path: Path) -> str:
    fonts = app.storage.root / "fonts"
    fonts.mkdir(exist_ok=True)
    shutil.copy(DEJAVU, fonts / "Brand.ttf")
    source = tmp_path / "pax.svg"
    source.write_text(TEMPLATE, encoding="utf-8")
    return await helpers.add_asset(app, "pax_template", source, "Welcome")


async def test_render_with_a_name_screen(
    app: StinercutApp,
    client,
    media_dir: Path,
    tmp_path: Path,
    built_in_defaults: None,  # type: ignore[no-untyped-def]
) -> None:
    template = await _template(app, tmp_path)
    sound = await helpers.add_asset(
        app, "audio", helpers.audio(media_dir, "music", seconds=1.0), "Jingle"
    )
    project = await add_project(
        app,
        media_dir,
        name="Jürgen Müßig",
        settings={"name_screen": {"template_asset": template, "sound_asset": sound}},
    )
    # The project's template and the request's switch combine.
    job = await helpers.start_render(
        client, project, {"name_screen": {"enabled": True}, "output": {"preset": "ultrafast"}}
    )
    done = await helpers.wait_job(app, job["uuid"])
    assert done["status"] == "completed", done
    output = app.storage.resolve(done["output_path"])
    data = helpers.ffprobe_json(output)
    assert float(data["format"]["duration"]) == pytest.approx(1.2 + 1.0, abs=FRAME + 0.03)
    frame = helpers.frame_rgb(output, 0.8)
    # Blue band (template) across the frame, white name in it, centred.
    assert helpers.pixel(frame, 5, 90)[2] > 150
    band = [helpers.pixel(frame, x, 90) for x in range(320)]
    white = [x for x, (r, g, b) in enumerate(band) if min(r, g, b) > 200]
    assert white and abs((white[0] + white[-1]) / 2 - 160) < 12
    # Over a blurred still of the (black) clip: black, not the template's art, above the band.
    assert max(helpers.pixel(frame, 160, 20)) < 40
    # After the name screen: the clip (black), no band.
    assert max(helpers.pixel(helpers.frame_rgb(output, 1.2 + 0.5), 5, 90)) < 40
    assert helpers.mean_volume(output) > -45  # the jingle under the name screen
    assert helpers.render_folders(app) == []


async def test_a_name_the_font_cannot_draw_fails_the_job(
    app: StinercutApp,
    client,
    media_dir: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    template = await _template(app, tmp_path)
    project = await add_project(app, media_dir, name="山田 太郎")
    error = await failed_render(app, client, project, template)
    assert "'山' (U+5C71)" in error
    assert "passenger name" in error
    assert helpers.render_folders(app) == []


async def test_name_screen_options_are_validated(
    app: StinercutApp,
    client,
    media_dir: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, media_dir)
    for body in (
        {"name_screen": {"duration": 90}},
        {"name_screen": {"font": "/etc/x.ttf"}},
        {"name_screen": {"easing": "bounce"}},
    ):
        response = await client.post(f"/api/projects/{project}/render", json=body)
        assert response.status_code == 422, body
        error = await response.get_json()
        assert "name_screen" in json.dumps(error)
    # An asset of the wrong type: the job fails naming it.
    music = await helpers.add_asset(app, "audio", helpers.audio(media_dir), "Song")
    error = await failed_render(app, client, project, music)
    assert "template_asset" in error and "audio" in error


async def test_cancel_during_the_name_screen_leaves_nothing(
    app: StinercutApp,
    client,
    media_dir: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    template = await _template(app, tmp_path)
    project = await add_project(app, media_dir, name="Ann Lee")
    # 30 s of name screen first, encoded slowly: ffmpeg is inside it when cancelled.
    body = {
        **helpers.LONG_RENDER,
        "name_screen": {"enabled": True, "template_asset": template, "duration": 30},
    }
    job = await helpers.start_render(client, project, body)
    await helpers.wait_rendering(app, job["uuid"])
    response = await client.post(f"/api/jobs/{job['uuid']}/cancel")
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "cancelled"
    assert media_children() == []
    assert helpers.render_folders(app) == []
