"""Field types shared by request bodies and upload forms."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def _printable(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    # Surrogates cannot be stored as UTF-8; control characters have no place in a name.
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("must not contain control characters")
    return value


#: A display name: trimmed, 1-255 characters, no control characters.
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_printable)]
