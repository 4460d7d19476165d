"""Start-up inserts missing settings and never overwrites what staff set."""

from __future__ import annotations

from sqlalchemy import select

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Setting, SettingType
from stinercut_svc.setting_defaults import SettingDefault, insert_missing

DEFAULTS = (
    SettingDefault("test.width", 1920, SettingType.INTEGER, "test", "Width"),
    SettingDefault("test.flag", True, SettingType.BOOLEAN, "test", "Flag"),
    SettingDefault("test.blob", {"a": 1}, SettingType.JSON, "test", "Blob", options=None),
    SettingDefault("test.mode", "mix", SettingType.STRING, "test", "Mode", options=("mix", "replace")),
)


async def test_inserts_only_missing_keys(app: StinercutApp) -> None:
    def staff_sets_width(session) -> None:  # type: ignore[no-untyped-def]
        session.add(Setting(key="test.width", value="1280", type=SettingType.INTEGER))

    await app.db.run(staff_sets_width)
    added = await app.db.run(lambda s: insert_missing(s, DEFAULTS))
    assert added == ["test.flag", "test.blob", "test.mode"]
    assert await app.db.run(lambda s: insert_missing(s, DEFAULTS)) == []

    rows = await app.db.run(
        lambda s: {r.key: r.to_api() for r in s.scalars(select(Setting).where(Setting.category == "test"))}
    )
    assert rows["test.flag"]["value"] is True and rows["test.flag"]["type"] == "boolean"
    assert rows["test.blob"]["value"] == {"a": 1}
    assert rows["test.mode"]["options"] == ["mix", "replace"]
    width = await app.db.run(
        lambda s: s.scalars(select(Setting).where(Setting.key == "test.width")).one().typed_value
    )
    assert width == 1280
