"""Test helper: remove the frontend's ``video.*`` render defaults.

A fresh database holds the frontend's seed rows (1920x1080, 30 fps, H.264, 8M cap),
and renders honour them. Tests about the pipeline itself (trims, watermark corner,
fast path) want the built-in defaults instead: the first clip's size and rate.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from stinercut_svc.context import StinercutApp
from stinercut_svc.jobs.options import FRONTEND_SETTING_KEYS
from stinercut_svc.models import Setting


async def clear_frontend_render_defaults(app: StinercutApp) -> None:
    await app.schema_ready.wait()  # the migration inserts them; it may still be running

    def clear(session: Session) -> None:
        session.execute(delete(Setting).where(Setting.key.in_(list(FRONTEND_SETTING_KEYS))))

    await app.db.run(clear)
