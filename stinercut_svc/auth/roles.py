"""Roles, and the one table of what each route needs.

Why one table: access rules scattered over the routers drift apart and cannot be
reviewed in one place; here every route of the API has one line, the guard
(``guard.py``) looks requests up in it, and ``tests/test_auth_roles.py`` walks
``app.url_map`` and fails when a route has no line (or a line names no route).

Roles are ordered: ``viewer`` reads; ``operator`` also creates, uploads, renders
and cancels; ``admin`` also deletes, changes settings and manages tokens.
:data:`OPEN` routes need nothing (liveness, health, metrics, the API docs), so
probes and load balancers keep working when access control is on.
"""

from __future__ import annotations

import enum
from typing import Final, Literal


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may (roles include the ones below)."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

#: A route anyone may call, token or not.
OPEN: Final = "open"
Access = Role | Literal["open"]

VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN

#: (method, Quart rule) -> what the caller needs. ``HEAD`` is looked up as ``GET``;
#: ``OPTIONS`` (CORS preflight, which browsers send without credentials) is open.
ROUTE_ROLES: Final[dict[tuple[str, str], Access]] = {
    # liveness, health, metrics and the API description
    ("GET", "/"): OPEN,
    ("GET", "/api/health"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/openapi.json"): OPEN,
    ("GET", "/docs"): OPEN,
    ("GET", "/docs/openapi.json"): OPEN,
    ("GET", "/docs/static/<name>"): OPEN,
    ("GET", "/static/<path:filename>"): OPEN,
    # the WebSocket hub (a viewer receives; what it may send: auth/hub.py)
    ("GET", "/ws"): VIEWER,
    ("GET", "/api/ws/clients"): VIEWER,
    # projects
    ("GET", "/api/projects"): VIEWER,
    ("POST", "/api/projects"): OPERATOR,
    ("GET", "/api/projects/<uuid>"): VIEWER,
    ("PATCH", "/api/projects/<uuid>"): OPERATOR,
    ("DELETE", "/api/projects/<uuid>"): ADMIN,
    # videos (clips of a project)
    ("POST", "/api/projects/<uuid>/videos"): OPERATOR,
    ("PUT", "/api/projects/<uuid>/videos/order"): OPERATOR,
    ("GET", "/api/videos/<uuid>"): VIEWER,
    ("PATCH", "/api/videos/<uuid>"): OPERATOR,
    ("DELETE", "/api/videos/<uuid>"): ADMIN,
    ("GET", "/api/videos/<uuid>/thumbnail"): VIEWER,
    # assets
    ("GET", "/api/assets"): VIEWER,
    ("POST", "/api/assets"): OPERATOR,
    ("GET", "/api/assets/<uuid>"): VIEWER,
    ("PATCH", "/api/assets/<uuid>"): OPERATOR,
    ("DELETE", "/api/assets/<uuid>"): ADMIN,
    ("GET", "/api/assets/<uuid>/file"): VIEWER,
    # settings
    ("GET", "/api/settings"): VIEWER,
    ("GET", "/api/settings/<key>"): VIEWER,
    ("PUT", "/api/settings/<key>"): ADMIN,
    # jobs
    ("GET", "/api/jobs"): VIEWER,
    ("GET", "/api/jobs/<uuid>"): VIEWER,
    ("POST", "/api/projects/<uuid>/render"): OPERATOR,
    ("POST", "/api/jobs/<uuid>/cancel"): OPERATOR,
    ("DELETE", "/api/jobs/<uuid>"): ADMIN,
    ("GET", "/api/jobs/<uuid>/output"): VIEWER,
    ("GET", "/api/jobs/<uuid>/outputs"): VIEWER,
    ("GET", "/api/jobs/<uuid>/outputs/<name>/download"): VIEWER,
    ("GET", "/api/jobs/<uuid>/webhooks"): VIEWER,
    # share links: creating and listing them is staff's; the link itself (/s/<token>)
    # is what a customer opens, its random token being the permission
    ("POST", "/api/jobs/<uuid>/share"): OPERATOR,
    ("GET", "/api/jobs/<uuid>/shares"): VIEWER,
    ("DELETE", "/api/jobs/<uuid>/shares/<share_uuid>"): ADMIN,
    ("GET", "/s/<token>"): OPEN,
    ("GET", "/s/<token>/video"): OPEN,
    ("GET", "/s/<token>/download"): OPEN,
    # ingest: imports (card copies and analysis), their jumps and staff's corrections
    ("GET", "/api/imports"): VIEWER,
    ("POST", "/api/imports"): OPERATOR,
    ("GET", "/api/imports/<uuid>"): VIEWER,
    ("POST", "/api/imports/<uuid>/cancel"): OPERATOR,
    ("POST", "/api/imports/<uuid>/retry"): OPERATOR,
    ("GET", "/api/imports/<uuid>/jumps"): VIEWER,
    ("GET", "/api/jumps/<uuid>"): VIEWER,
    ("POST", "/api/jumps/<uuid>/assign"): OPERATOR,
    ("POST", "/api/jumps/<uuid>/confirm"): OPERATOR,
    ("POST", "/api/jumps/<uuid>/split"): OPERATOR,
    ("POST", "/api/jumps/merge"): OPERATOR,
    # compute on uploaded input (CPU and storage cost: not for read-only tokens)
    ("POST", "/api/detectqr"): OPERATOR,
    ("POST", "/api/fonts/convert"): OPERATOR,
    # the detector's control API, passed through
    ("GET", "/api/services/detector/status"): VIEWER,
    ("POST", "/api/services/detector/restart"): OPERATOR,
    ("POST", "/api/services/detector/enable"): OPERATOR,
    ("POST", "/api/services/detector/disable"): OPERATOR,
}

#: Methods that never need a role: CORS preflight and Quart's automatic OPTIONS.
UNGUARDED_METHODS = frozenset({"OPTIONS"})


def required_role(method: str, rule: str) -> Access:
    """What a request needs. A route missing from the table needs ``admin``
    (fail closed); the route-table test keeps that from happening silently."""
    method = "GET" if method == "HEAD" else method
    return ROUTE_ROLES.get((method, rule), ADMIN)
