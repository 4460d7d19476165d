"""The REST guard: every HTTP request is checked against the route table first.

Installed only when ``AUTH_REQUIRED`` is on, so the embedded default pays nothing.
It runs as the first ``before_request`` hook after CORS's preflight answer (a
preflight carries no credentials and must not be refused), and looks the
request's *rule* up in :data:`~.roles.ROUTE_ROLES`, so a route and its rule are
matched the same way the router matched them. A request no rule matches (404,
405) passes: the router answers it, and that reveals nothing a token protects.

Failures are domain errors (``auth/errors.py``) that ``errors.py`` turns into
401/403 in the one error format.
"""

from __future__ import annotations

from quart import Quart, g, request

from .access import AccessControl, bearer_token
from .roles import UNGUARDED_METHODS, required_role


def install_guard(app: Quart, access: AccessControl) -> None:
    if not access.required:
        return

    @app.before_request
    async def _guard() -> None:
        if request.method in UNGUARDED_METHODS:
            return
        rule = request.url_rule
        if rule is None:
            return
        needed = required_role(request.method, rule.rule)
        g.role = await access.check(
            request.remote_addr, bearer_token(request.headers.get("Authorization")), needed
        )
