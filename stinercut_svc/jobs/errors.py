"""The render plan's domain errors, in a module of their own so the HTTP error table
(``stinercut_svc/errors.py``) can map them without importing the whole renderer."""

from __future__ import annotations


class PlanError(ValueError):
    """The inputs cannot make a video; the message says which input and why."""


class CodecUnavailable(PlanError):
    """A supported codec this ffmpeg has no encoder for (HTTP 422 when asked for in a request)."""

    def __init__(self, message: str, *, codec: str, available: list[str]) -> None:
        super().__init__(message)
        self.codec = codec
        self.available = available
