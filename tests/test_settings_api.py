"""``/api/settings``: listing by category, typed writes, options, defaults never overwritten."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from stinercut_svc import setting_defaults
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Setting, SettingType


@pytest.fixture
async def rows(app: StinercutApp) -> None:
    def add(session) -> None:  # type: ignore[no-untyped-def]
        session.add_all(
            [
                Setting(key="t.count", value="3", type=SettingType.INTEGER, category="test"),
                Setting(key="t.flag", value="false", type=SettingType.BOOLEAN, category="test"),
                Setting(key="t.title", value="Hi", type=SettingType.STRING, category="test"),
                Setting(key="t.blob", value='{"a": 1}', type=SettingType.JSON, category="other"),
                Setting(
                    key="t.size",
                    value="720",
                    type=SettingType.INTEGER,
                    category="test",
                    options=json.dumps([720, 1080]),
                ),
                Setting(
                    key="t.mode",
                    value="mix",
                    type=SettingType.STRING,
                    category="test",
                    options=json.dumps([{"value": "mix", "label": "Mix"}, {"value": "replace"}]),
                ),
                Setting(
                    key="t.bools",
                    value="true",
                    type=SettingType.BOOLEAN,
                    category="test",
                    options=json.dumps([True]),
                ),
            ]
        )

    await app.db.run(add)


async def test_list_and_get(client, rows) -> None:  # type: ignore[no-untyped-def]
    items = (await (await client.get("/api/settings?category=test")).get_json())["items"]
    keys = [s["key"] for s in items]
    assert keys == sorted(keys) and "t.blob" not in keys and "t.count" in keys
    everything = (await (await client.get("/api/settings")).get_json())["items"]
    assert {"t.blob", "t.count"} <= {s["key"] for s in everything}

    body = await (await client.get("/api/settings/t.count")).get_json()
    assert body["value"] == 3 and body["type"] == "integer" and body["category"] == "test"
    body = await (await client.get("/api/settings/t.blob")).get_json()
    assert body["value"] == {"a": 1}
    body = await (await client.get("/api/settings/t.mode")).get_json()
    assert body["options"][0] == {"value": "mix", "label": "Mix"}

    response = await client.get("/api/settings/no.such.key")
    assert response.status_code == 404
    assert (await client.get("/api/settings?category=" + "x" * 51)).status_code == 400


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("t.count", 42, "42"),
        ("t.count", -7, "-7"),
        ("t.flag", True, "true"),
        ("t.title", "Welcome, skydiver ✈", "Welcome, skydiver ✈"),
        ("t.title", "", ""),
        ("t.blob", [1, {"b": None}], '[1, {"b": null}]'),
        ("t.blob", "text", '"text"'),
        ("t.size", 1080, "1080"),
        ("t.mode", "replace", "replace"),
        ("t.bools", True, "true"),
    ],
)
async def test_put_typed(client, app: StinercutApp, rows, key: str, value, stored: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.put(f"/api/settings/{key}", json={"value": value})
    assert response.status_code == 200, await response.get_data()
    assert (await response.get_json())["value"] == value
    raw = await app.db.run(lambda s: s.scalars(select(Setting.value).where(Setting.key == key)).one())
    assert raw == stored


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("t.count", "42"),
        ("t.count", 4.5),
        ("t.count", True),
        ("t.count", 2**70),
        ("t.count", None),
        ("t.flag", "true"),
        ("t.flag", 1),
        ("t.title", 5),
        ("t.title", ["a"]),
        ("t.blob", None),
        ("t.size", 333),
        ("t.mode", "fade"),
        ("t.bools", False),
    ],
)
async def test_put_wrong_value_is_422(client, app: StinercutApp, rows, key: str, value) -> None:  # type: ignore[no-untyped-def]
    before = await (await client.get(f"/api/settings/{key}")).get_json()
    response = await client.put(f"/api/settings/{key}", json={"value": value})
    assert response.status_code == 422
    error = (await response.get_json())["error"]
    assert error["code"] == "invalid_value" and error["details"]["field"] == "value"
    assert key in error["message"]
    after = await (await client.get(f"/api/settings/{key}")).get_json()
    assert after["value"] == before["value"]


async def test_put_body_errors(client, rows) -> None:  # type: ignore[no-untyped-def]
    url = "/api/settings/t.count"
    assert (await client.put(url, json={})).status_code == 422
    assert (await client.put(url, json={"value": 1, "extra": 2})).status_code == 422
    assert (await client.put(url, json=[1])).status_code == 422
    response = await client.put(url, data=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    response = await client.put(
        "/api/settings/t.blob", data=b'{"value": NaN}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert (await client.put("/api/settings/nope", json={"value": 1})).status_code == 404


async def test_start_up_defaults_do_not_overwrite(app: StinercutApp) -> None:
    default = setting_defaults.SettingDefault(
        key="t.default", value=10, type=SettingType.INTEGER, category="test", label="T"
    )
    added = await app.db.run(lambda s: setting_defaults.insert_missing(s, (default,)))
    assert added == ["t.default"]

    def change(session) -> None:  # type: ignore[no-untyped-def]
        session.scalars(select(Setting).where(Setting.key == "t.default")).one().value = "99"

    await app.db.run(change)
    added = await app.db.run(lambda s: setting_defaults.insert_missing(s, (default,)))
    assert added == []
    value = await app.db.run(
        lambda s: s.scalars(select(Setting.value).where(Setting.key == "t.default")).one()
    )
    assert value == "99"
