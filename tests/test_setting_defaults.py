"""Start-up inserts missing settings and never overwrites what staff set; the
frontend's seed rows exist once the service created the ``setting`` table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text

from stinercut_svc import schema, setting_defaults
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Setting, SettingType
from stinercut_svc.setting_defaults import (
    FRONTEND_DEFAULTS,
    SettingDefault,
    insert_missing,
)
from tests.support import backends
from tests.support.frontend_schema import FRONTEND_SETTINGS

DEFAULTS = (
    SettingDefault("test.width", 1920, SettingType.INTEGER, "test", "Width"),
    SettingDefault("test.flag", True, SettingType.BOOLEAN, "test", "Flag"),
    SettingDefault("test.blob", {"a": 1}, SettingType.JSON, "test", "Blob", options=None),
    SettingDefault(
        "test.mode", "mix", SettingType.STRING, "test", "Mode", options=("mix", "replace")
    ),
)


async def test_inserts_only_missing_keys(app: StinercutApp) -> None:
    def staff_sets_width(session) -> None:  # type: ignore[no-untyped-def]
        session.add(Setting(key="test.width", value="1280", type=SettingType.INTEGER))

    await app.db.run(staff_sets_width)
    added = await app.db.run(lambda s: insert_missing(s, DEFAULTS))
    assert added == ["test.flag", "test.blob", "test.mode"]
    assert await app.db.run(lambda s: insert_missing(s, DEFAULTS)) == []

    rows = await app.db.run(
        lambda s: {
            r.key: r.to_api() for r in s.scalars(select(Setting).where(Setting.category == "test"))
        }
    )
    assert rows["test.flag"]["value"] is True and rows["test.flag"]["type"] == "boolean"
    assert rows["test.blob"]["value"] == {"a": 1}
    assert rows["test.mode"]["options"] == ["mix", "replace"]
    width = await app.db.run(
        lambda s: s.scalars(select(Setting).where(Setting.key == "test.width")).one().typed_value
    )
    assert width == 1280


# --- the frontend's seed rows (FRONTEND_CONTRACT.md) --------------------------------


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    engine = backends.admin_engine(database_url)
    backends.drop_everything(engine)
    yield engine
    backends.drop_everything(engine)
    engine.dispose()


def _seed_rows(engine: Engine) -> dict[str, tuple[object, ...]]:
    key = "`key`" if engine.dialect.name == "mysql" else '"key"'
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {key}, type, value, options, category, label, description, created_at"
                f" FROM setting WHERE category IN ('video', 'storage')"
            )
        ).all()
    return {r[0]: tuple(r) for r in rows}


def test_frontend_rows_exist_after_the_service_created_the_table(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    rows = _seed_rows(empty_engine)
    assert {k: v[:7] for k, v in rows.items()} == {r[0]: r for r in FRONTEND_SETTINGS}
    assert all(v[7] is not None for v in rows.values())


def test_frontend_rows_are_never_overwritten(empty_engine: Engine) -> None:
    """Staff changed one before the upgrade to 0003 and deleted one after it."""
    schema.upgrade(empty_engine, "0002")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO setting (" + ("`key`" if empty_engine.dialect.name == "mysql"
                                           else '"key"') +
                ", value, type, category, label, created_at, updated_at) VALUES"
                " ('video.default_codec', 'vp9', 'string', 'video', 'Codec',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )  # fmt: skip
    schema.upgrade(empty_engine)
    rows = _seed_rows(empty_engine)
    assert rows["video.default_codec"][1:6] == ("string", "vp9", None, "video", "Codec")
    assert len(rows) == len(FRONTEND_SETTINGS)
    with empty_engine.begin() as conn:
        conn.execute(text("DELETE FROM setting WHERE category = 'storage'"))
    schema.upgrade(empty_engine)  # at head already: nothing comes back
    assert set(_seed_rows(empty_engine)) == {r[0] for r in FRONTEND_SETTINGS if r[4] == "video"}


def test_frontend_defaults_list_is_the_contract() -> None:
    listed = {
        d.key: (d.key, d.type.value, d.stored_value(), d.stored_options(), d.category, d.label,
                d.description)
        for d in FRONTEND_DEFAULTS
    }  # fmt: skip
    assert listed == {r[0]: r for r in FRONTEND_SETTINGS}
    # Not inserted at start-up: a row the operator deleted stays deleted.
    assert not {d.key for d in FRONTEND_DEFAULTS} & {d.key for d in setting_defaults.DEFAULTS}
