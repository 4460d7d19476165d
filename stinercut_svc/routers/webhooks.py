"""``GET /api/jobs/{uuid}/webhooks``: what the outbox did with a job's callbacks.

Operators need to see why a receiver got nothing (refused URL, 500s, a closed
retry window) without reading logs; receivers' developers use it to find the
event ids of deliveries they missed.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import document_response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import current
from ..errors import ApiError
from ..models import Job
from ..webhooks import outbox
from .docs import errors
from .params import parse_uuid

blueprint = Blueprint("webhooks", __name__)


class DeliveryOut(BaseModel):
    event_id: str
    url: str
    status: Literal["pending", "delivered", "abandoned"]
    attempts: int
    last_error: str | None
    created_at: str
    delivered_at: str | None


class DeliveryListOut(BaseModel):
    job_uuid: str
    deliveries: list[DeliveryOut]


def _deliveries(session: Session, job_uuid: str) -> dict[str, Any]:
    if session.scalar(select(Job.id).where(Job.uuid == job_uuid)) is None:
        raise ApiError.not_found("job", job_uuid)
    return {"job_uuid": job_uuid, "deliveries": outbox.deliveries_for(session, job_uuid)}


@blueprint.get("/api/jobs/<uuid>/webhooks")
@document_response(DeliveryListOut)
@errors(400, 404)
async def job_webhooks(uuid: str) -> dict[str, Any]:
    """The job's webhook deliveries, oldest first: status, attempts, last error."""
    return await current().db.run(partial(_deliveries, job_uuid=parse_uuid(uuid)))
