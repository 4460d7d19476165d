"""The route -> role table (``stinercut_svc/auth/roles.py``) covers the whole API.

Walks the real app's ``url_map``: a route added without a line in the table
fails here (the guard would otherwise make it admin-only in silence), and so
does a line naming a route that no longer exists.
"""

from __future__ import annotations

from pathlib import Path

from stinercut_svc.app import create_app
from stinercut_svc.auth.roles import (
    ADMIN,
    OPEN,
    OPERATOR,
    ROUTE_ROLES,
    UNGUARDED_METHODS,
    VIEWER,
    Role,
    required_role,
)
from stinercut_svc.config import Settings


def _routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", shared_video_path=tmp_path)
    )
    routes: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods or ():
            if method not in UNGUARDED_METHODS and method != "HEAD":
                routes.add((method, rule.rule))
    return routes


def test_every_route_has_exactly_one_entry(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    missing = sorted(routes - ROUTE_ROLES.keys())
    assert missing == [], f"routes without a required role in auth/roles.py: {missing}"
    stale = sorted(ROUTE_ROLES.keys() - routes)
    assert stale == [], f"auth/roles.py names routes that do not exist: {stale}"


def test_mutating_routes_need_more_than_viewer(tmp_path: Path) -> None:
    for (method, rule), needed in ROUTE_ROLES.items():
        if method != "GET":
            assert needed in (OPERATOR, ADMIN), f"{method} {rule} is {needed}"
    # The ones the issue names: deletes and settings are admin's.
    for (method, rule), needed in ROUTE_ROLES.items():
        if method == "DELETE" or rule.startswith("/api/settings/") and method != "GET":
            assert needed is ADMIN, f"{method} {rule}"
    assert required_role("GET", "/") == OPEN
    assert required_role("GET", "/api/health") == OPEN


def test_role_order_and_lookup() -> None:
    assert [r.value for r in sorted(Role, key=lambda r: r.rank)] == ["viewer", "operator", "admin"]
    assert ADMIN.allows(OPERATOR) and OPERATOR.allows(VIEWER) and VIEWER.allows(VIEWER)
    assert not VIEWER.allows(OPERATOR) and not OPERATOR.allows(ADMIN)
    assert required_role("HEAD", "/api/projects") is VIEWER  # HEAD is GET
    assert required_role("POST", "/api/no-such-route") is ADMIN  # fail closed
