"""``/docs`` in a real browser (Debian's Chromium driven by Playwright), offline.

The page must work where the service runs: on a centre's network without
internet access. The browser is allowed to reach the service and nothing else
(every other request is aborted and recorded), and the test checks that

* the page lists every operation of ``/openapi.json`` (method and path), and
* "Try it out" → "Execute" on ``GET /api/health`` shows the live ``200``.

``scripts/test`` installs Chromium (``ensure_chromium``); where it cannot be
installed the test is skipped with that reason, except under ``CI=true``, where a
missing browser is a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from tests.support.browser import launch_args, require_chromium

PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


def drive_docs(chromium: Path, base_url: str) -> dict[str, Any]:
    """Open /docs, list its operations, run GET /api/health; what the page showed."""
    from playwright.sync_api import sync_playwright

    own = urlsplit(base_url).netloc
    foreign: list[str] = []
    page_errors: list[str] = []
    args = launch_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)

            def only_the_service(route: Any) -> None:
                if urlsplit(route.request.url).netloc == own:
                    route.continue_()
                else:  # a CDN, fonts, anything outside: the docs must not need it
                    foreign.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_service)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(f"{base_url}/docs")
            page.wait_for_selector(".opblock")
            operations = {
                (
                    block.query_selector(".opblock-summary-method").inner_text().strip(),
                    block.query_selector(".opblock-summary-path")
                    .get_attribute("data-path")
                    .strip(),
                )
                for block in page.query_selector_all(".opblock")
            }
            title = page.title()

            health = page.locator(".opblock-get").filter(
                has=page.locator('.opblock-summary-path[data-path="/api/health"]')
            )
            health.locator(".opblock-summary").first.click()
            health.locator("button.try-out__btn").click()
            health.locator("button.execute").click()
            status_cell = health.locator(".live-responses-table .response .response-col_status")
            status_cell.first.wait_for()
            live_status = status_cell.first.inner_text().strip()
            body = health.locator(".live-responses-table .response-col_description pre").first
            live_body = body.inner_text()
        finally:
            browser.close()
    return {
        "operations": operations,
        "title": title,
        "live_status": live_status,
        "live_body": live_body,
        "foreign": foreign,
        "page_errors": page_errors,
    }


async def test_docs_page_lists_operations_and_runs_health(
    chromium: Path, live_url: str
) -> None:
    async with httpx.AsyncClient() as http:
        document = (await http.get(f"{live_url}/openapi.json")).json()
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert ("GET", "/api/health") in documented

    with trio.fail_after(180):
        seen = await trio.to_thread.run_sync(drive_docs, chromium, live_url)

    assert seen["foreign"] == [], "the docs page reached outside the service"
    assert seen["page_errors"] == []
    assert "stinercut" in seen["title"]
    assert seen["operations"] == documented
    assert seen["live_status"] == "200"
    assert '"status"' in seen["live_body"] and '"database": true' in seen["live_body"]


async def test_docs_assets_are_local_and_bounded(live_url: str) -> None:
    """The page references only /docs/static/ files, and only the bundle's own ones."""
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{live_url}/docs")
        assert page.status_code == 200
        assert "https://" not in page.text and "http://" not in page.text
        css = await http.get(f"{live_url}/docs/static/swagger-ui.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert len(css.content) > 10_000
        js = await http.get(f"{live_url}/docs/static/swagger-ui-bundle.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        for name in ("index.html", "..%2f..%2fswagger_ui_bundle%2f__init__.py", "swagger-ui.js"):
            missing = await http.get(f"{live_url}/docs/static/{name}")
            assert missing.status_code == 404, name
            assert missing.json()["error"]["code"] == "not_found"
        spec = (await http.get(f"{live_url}/docs/openapi.json")).json()
        assert spec["openapi"] == "3.0.3"

