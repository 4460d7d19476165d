"""Typed key/value settings: read, and write checked against the row's type and options.

The API carries values as JSON of the row's ``type``: ``integer`` a whole
number (64-bit, not a boolean), ``boolean`` true/false, ``string`` a string,
``json`` any JSON value (finite numbers only). ``null`` is refused. When the row
has ``options`` (a JSON list, of plain values or of ``{"value": …}`` objects),
the value must be one of them. Rows are created by the frontend or by the
service's start-up defaults; ``PUT`` never creates a key.

The rows the renderer reads (``render.*``, ``video.*``) are checked further,
with the renderer's own parser (:func:`~stinercut_svc.jobs.options.setting_overrides`),
so ``PUT`` refuses with 422 what a render would otherwise skip later
(``"loud"`` as the music volume). The numeric ones the frontend's table keeps
as text (``render.music_volume`` = ``"0.8"``) also take a JSON number, stored in
the same text form: ``0.5`` is a number wherever a number is meant.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..jobs.options import MAX_CONCURRENT_KEY, MUSIC_FADE_KEY, SETTING_KEYS, setting_overrides
from ..models import Setting, SettingType

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Text rows that hold a number (see the module docstring).
NUMERIC_TEXT_KEYS = frozenset(
    {"render.watermark_scale", "render.music_volume", MUSIC_FADE_KEY, "render.output_fps"}
)
#: ``render.max_concurrent_jobs``: renders at the same time per instance.
MAX_CONCURRENT_RANGE = (1, 64)


def find_setting(session: Session, key: str) -> Setting:
    setting = session.scalars(select(Setting).where(Setting.key == key)).one_or_none()
    if setting is None:
        raise ApiError.not_found("setting", repr(key))
    return setting


def list_settings(session: Session, category: str | None) -> dict[str, Any]:
    query = select(Setting).order_by(Setting.category, Setting.key)
    if category is not None:
        query = query.where(Setting.category == category)
    return {"items": [s.to_api() for s in session.scalars(query)]}


def get_setting(session: Session, key: str) -> dict[str, Any]:
    return find_setting(session, key).to_api()


def put_setting(session: Session, key: str, value: Any) -> dict[str, Any]:
    setting = find_setting(session, key)
    setting.value = stored_form(setting, value)
    session.flush()
    return setting.to_api()


def _wrong(message: str, **details: Any) -> ApiError:
    return ApiError(422, message, code="invalid_value", details={"field": "value", **details})


def stored_form(setting: Setting, value: Any) -> str:
    """Check ``value`` against the row; return the text to store (or raise 422)."""
    kind = setting.type
    if value is None:
        raise _wrong(f"setting {setting.key!r} needs a {kind.value} value, not null")
    if kind is SettingType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(f"setting {setting.key!r} is an integer; got {_json_type(value)}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise _wrong(f"setting {setting.key!r}: {value} is outside the 64-bit range")
        text = str(value)
    elif kind is SettingType.BOOLEAN:
        if not isinstance(value, bool):
            raise _wrong(f"setting {setting.key!r} is a boolean; got {_json_type(value)}")
        text = "true" if value else "false"
    elif kind is SettingType.STRING and setting.key in NUMERIC_TEXT_KEYS and _is_number(value):
        if not math.isfinite(value):
            raise _wrong(f"setting {setting.key!r}: numbers must be finite")
        text = repr(float(value)) if isinstance(value, float) else str(value)
    elif kind is SettingType.STRING:
        if not isinstance(value, str):
            raise _wrong(f"setting {setting.key!r} is a string; got {_json_type(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _wrong(f"setting {setting.key!r}: the text is not valid Unicode") from None
        text = value
    else:
        try:
            text = json.dumps(value, allow_nan=False)
        except ValueError:
            raise _wrong(f"setting {setting.key!r}: numbers must be finite") from None
    _check_options(setting, value)
    _check_render_value(setting, text)
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_render_value(setting: Setting, text: str) -> None:
    """A row the renderer reads must hold a value the renderer can use."""
    if setting.key == MAX_CONCURRENT_KEY:
        low, high = MAX_CONCURRENT_RANGE
        if not low <= int(text) <= high:
            raise _wrong(f"setting {setting.key!r} must be between {low} and {high}")
        return
    if setting.key not in SETTING_KEYS and setting.key != MUSIC_FADE_KEY:
        return
    typed: Any = int(text) if setting.type is SettingType.INTEGER else text
    _, ignored = setting_overrides({setting.key: typed})
    if setting.key in ignored:
        hint = f" ({setting.description})" if setting.description else ""
        raise _wrong(f"setting {setting.key!r}: {text[:60]!r} is not a usable value{hint}")


def _check_options(setting: Setting, value: Any) -> None:
    try:
        options = json.loads(setting.options) if setting.options else None
    except ValueError:
        return  # unreadable options written by someone else: nothing to check against
    if not isinstance(options, list) or not options:
        return
    allowed = [o["value"] if isinstance(o, dict) and "value" in o else o for o in options]
    if not any(_same(value, a) for a in allowed):
        raise _wrong(
            f"setting {setting.key!r} must be one of {json.dumps(allowed)}", options=allowed
        )


def _same(a: Any, b: Any) -> bool:
    # JSON true is not 1: compare booleans only with booleans.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
