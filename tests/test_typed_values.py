"""Numbers are numbers: render options, project settings and setting rows.

``0.5`` is taken wherever a number is meant (also by the setting rows the
frontend's table keeps as text, such as ``render.music_volume = "0.8"``), and
``"loud"`` where a number is meant is a 422 that names the field, at the moment
it is written instead of being skipped by a render later.
"""

from __future__ import annotations

from typing import Any

import pytest

from stinercut_svc.context import StinercutApp
from stinercut_svc.jobs import queue
from stinercut_svc.jobs.options import setting_overrides


async def put(client, key: str, value: Any) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = await client.put(f"/api/settings/{key}", json={"value": value})
    return response.status_code, await response.get_json()


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("render.music_volume", 0.5, 0.5),
        ("render.music_volume", 2, 2.0),
        ("render.music_volume", "1.25", 1.25),
        ("render.watermark_scale", 0.25, 0.25),
        ("render.music_fade_seconds", 0.5, 0.5),
        ("render.output_fps", 29.97, 29.97),
        ("render.output_fps", "auto", None),
        ("render.output_crf", 23, 23),
    ],
)
async def test_numbers_are_accepted_and_reach_the_renderer(
    app: StinercutApp, client, key: str, value: Any, stored: Any  # type: ignore[no-untyped-def]
) -> None:
    status, body = await put(client, key, value)
    assert status == 200, body
    # What a render reads from the row afterwards: the same number.
    values = await app.db.run(queue.read_render_settings)
    fields, ignored = setting_overrides(values)
    assert key not in ignored
    target = {
        "render.music_volume": "music_volume",
        "render.watermark_scale": "watermark_scale",
        "render.music_fade_seconds": "music_fade_s",
        "render.output_fps": "output.fps",
        "render.output_crf": "output.crf",
    }[key]
    assert fields.get(target) == stored


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("render.music_volume", "loud", "'render.music_volume': 'loud' is not a usable value"),
        ("render.music_volume", 9, "is not a usable value"),  # outside 0-4
        ("render.watermark_scale", "big", "'render.watermark_scale'"),
        ("render.output_fps", "fast", "'render.output_fps': 'fast'"),
        ("render.output_crf", 0.5, "'render.output_crf' is an integer"),
        ("render.max_concurrent_jobs", 0, "between 1 and 64"),
        ("render.music_volume", float("inf"), None),  # not JSON: refused before the service
    ],
)
async def test_words_where_numbers_are_meant_are_refused(
    app: StinercutApp, client, key: str, value: Any, words: str | None  # type: ignore[no-untyped-def]
) -> None:
    before = await app.db.run(queue.read_render_settings)
    if words is None:
        response = await client.put(
            f"/api/settings/{key}",
            data='{"value": Infinity}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422)
        return
    status, body = await put(client, key, value)
    assert status == 422, body
    assert words in body["detail"]
    assert body["error"]["details"]["field"] == "value"
    assert await app.db.run(queue.read_render_settings) == before  # nothing written


async def test_render_options_and_project_settings_are_typed(client) -> None:  # type: ignore[no-untyped-def]
    project = await (await client.post("/api/projects", json={"name": "typed"})).get_json()
    url = f"/api/projects/{project['uuid']}"

    patched = await client.patch(url, json={"settings": {"music_volume": 0.5, "focus_x": 0.25}})
    assert patched.status_code == 200
    assert (await patched.get_json())["settings"]["music_volume"] == 0.5

    for body, field in (
        ({"settings": {"music_volume": "loud"}}, "settings.music_volume"),
        ({"settings": {"output": {"crf": 20.5}}}, "settings.output.crf"),
    ):
        refused = await client.patch(url, json=body)
        assert refused.status_code == 422
        fields = [f["field"] for f in (await refused.get_json())["error"]["details"]["fields"]]
        assert fields == [field]

    # A render body: the numbers pass validation (the project has no clips: that is
    # the next check, 422 not_renderable), the word is refused naming its field.
    numbers = await client.post(f"{url}/render", json={"music_volume": 0.5, "watermark_scale": 0.5})
    assert (await numbers.get_json())["error"]["code"] == "not_renderable"
    word = await client.post(f"{url}/render", json={"music_volume": "loud"})
    assert word.status_code == 422
    error = (await word.get_json())["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == ["music_volume"]
