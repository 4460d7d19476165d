"""Debian's Chromium driven by Playwright, for tests of pages customers and staff open.

``scripts/test`` installs the browser (``ensure_chromium``). Where it cannot be
installed, :func:`require_chromium` skips with the reason, except under
``CI=true``, where a missing browser fails the test instead of hiding it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> Path:
    problem = None
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problem = f"{CHROMIUM} is missing (scripts/test installs it: ensure_chromium, apt-get)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (requirements/test.lock)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run in CI: {problem}")
        pytest.skip(problem)
    return CHROMIUM


def launch_args() -> list[str]:
    """Chromium refuses to run as root with its sandbox on."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []
