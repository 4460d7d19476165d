"""Domain errors of access control; ``errors.py`` maps them onto HTTP answers.

401 means "who are you?" (no token, or one that is unknown or revoked), 403 means
"known, but your role is too low". The messages say what to send, never anything
about other tokens.
"""

from __future__ import annotations


class AuthError(Exception):
    """Base of the errors a request can get from access control."""

    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationRequired(AuthError):
    """No token where one is needed (401)."""

    code = "authentication_required"


class InvalidToken(AuthError):
    """A token that is malformed, unknown or revoked (401)."""

    code = "invalid_token"


class InsufficientRole(AuthError):
    """A valid token whose role is below what the route needs (403)."""

    code = "insufficient_role"

    def __init__(self, message: str, *, required: str, role: str) -> None:
        super().__init__(message)
        self.required = required
        self.role = role


class TokenError(ValueError):
    """Managing tokens (the CLI): a bad name, an unknown token, a name in use."""


class TokenNotFound(TokenError):
    pass


class TokenNameTaken(TokenError):
    pass
