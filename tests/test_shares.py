"""Share links: created for a finished job, opened without any other access, Range
requests for the player, expiry and revocation, no token stored in clear."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import httpx
import trio
from sqlalchemy import select

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import ShareLink
from tests.support.browser import launch_args, require_chromium
from tests.test_render_helpers import add_project, clip, start_render, wait_job

FAST = {"output": {"preset": "ultrafast"}}


async def finished_job(app: StinercutApp, client, media_dir: Path, name: str) -> dict:  # type: ignore[no-untyped-def]
    project = await add_project(
        app, [clip(media_dir, "sh1s", seconds=1, size="160x120")], name=name
    )
    job = await start_render(client, project, FAST)
    row = await wait_job(app, job["uuid"], ["completed"])
    assert row["status"] == "completed"
    return job


async def test_share_link_plays_downloads_expires_and_revokes(
    app: StinercutApp, client, live_url: str, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    job = await finished_job(app, client, media_dir, "Sprung Jürgen Müßig <3")
    response = await client.post(f"/api/jobs/{job['uuid']}/share", json={"expires_in_hours": 2})
    assert response.status_code == 201, await response.get_data(as_text=True)
    share = await response.get_json()
    token = share["token"]
    assert len(token) >= 43 and share["url"].endswith(f"/s/{token}")
    assert share["state"] == "active" and share["views"] == 0

    # Only the hash is stored.
    def stored(session) -> list[str]:  # type: ignore[no-untyped-def]
        return list(session.scalars(select(ShareLink.token_hash)))

    assert await app.db.run(stored) == [hashlib.sha256(token.encode()).hexdigest()]

    # A plain HTTP client with no credentials: page, video (ranges), download.
    async with httpx.AsyncClient(base_url=live_url, trust_env=False) as anyone:
        page = await anyone.get(f"/s/{token}", headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Sprung Jürgen Müßig &lt;3" in page.text  # escaped, not markup
        assert f'src="/s/{token}/video"' in page.text and f'href="/s/{token}/download"' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in page.headers["content-security-policy"]

        full = await anyone.get(f"/s/{token}/video")
        assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
        size = len(full.content)
        assert full.content[4:8] == b"ftyp" and "content-disposition" not in full.headers
        tail = await anyone.get(f"/s/{token}/video", headers={"Range": "bytes=-500"})
        assert tail.status_code == 206 and tail.content == full.content[-500:]
        assert tail.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"
        middle = await anyone.get(f"/s/{token}/video", headers={"Range": "bytes=100-199"})
        assert middle.status_code == 206 and middle.content == full.content[100:200]
        beyond = await anyone.get(f"/s/{token}/video", headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416

        download = await anyone.get(f"/s/{token}/download")
        assert download.status_code == 200 and download.content == full.content
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment") and "filename*=UTF-8''" in disposition

        # Nothing else is reachable with the token.
        assert (await anyone.get(f"/s/{token}/../api/jobs")).status_code in (404, 400)
        listing = await client.get(f"/api/jobs/{job['uuid']}/shares")
        [entry] = (await listing.get_json())["shares"]
        assert "token" not in entry and entry["views"] == 2  # the page and the download

        # Expired: same answer as unknown.
        def expire(session) -> None:  # type: ignore[no-untyped-def]
            for link in session.scalars(select(ShareLink)):
                link.expires_at = link.created_at - timedelta(seconds=1)

        await app.db.run(expire)
        gone = await anyone.get(f"/s/{token}", headers={"Accept": "text/html"})
        assert gone.status_code == 404 and "expired or was withdrawn" in gone.text
        gone_json = await anyone.get(f"/s/{token}/video")
        assert gone_json.status_code == 404
        assert gone_json.json()["error"]["code"] == "share_not_found"
        listing = await client.get(f"/api/jobs/{job['uuid']}/shares")
        assert (await listing.get_json())["shares"][0]["state"] == "expired"

        # A second link, revoked.
        second = await (await client.post(f"/api/jobs/{job['uuid']}/share")).get_json()
        assert (await anyone.get(f"/s/{second['token']}/video")).status_code == 200
        revoked = await client.delete(f"/api/jobs/{job['uuid']}/shares/{second['uuid']}")
        assert revoked.status_code == 200 and (await revoked.get_json())["state"] == "revoked"
        assert (await anyone.get(f"/s/{second['token']}/video")).status_code == 404
        assert (await anyone.get(f"/s/{second['token']}/download")).status_code == 404

        unknown = await anyone.get("/s/" + "A" * 43)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "share_not_found"

    # Deleting the job takes its links with it.
    assert (await client.delete(f"/api/jobs/{job['uuid']}")).status_code == 200
    assert await app.db.run(stored) == []


async def test_share_refusals(app: StinercutApp, client, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import uuid

    missing = await client.post(f"/api/jobs/{uuid.uuid4()}/share")
    assert missing.status_code == 404
    assert (await client.post("/api/jobs/nope/share")).status_code == 400
    project = await add_project(app, [clip(media_dir, "sh1s", seconds=1, size="160x120")])
    job = await start_render(client, project, FAST)
    await wait_job(app, job["uuid"])
    for body in ({"expires_in_hours": 0}, {"expires_in_hours": "soon"},
                 {"expires_in_hours": 10**6}, {"bogus": 1}):
        response = await client.post(f"/api/jobs/{job['uuid']}/share", json=body)
        assert response.status_code == 422, body
        assert "expires_in_hours" in (await response.get_json())["error"]["message"] or "bogus" in (
            await response.get_json()
        )["error"]["message"]
    # An unfinished job has nothing to share.
    pending = await add_project(app, [clip(media_dir, "sh1s", seconds=1, size="160x120")])
    queued = await start_render(client, pending, FAST)
    cancelled = await client.post(f"/api/jobs/{queued['uuid']}/cancel")
    assert cancelled.status_code in (200, 202), await cancelled.get_data(as_text=True)
    await wait_job(app, queued["uuid"])
    row = await (await client.get(f"/api/jobs/{queued['uuid']}")).get_json()
    if row["status"] != "completed":
        refused = await client.post(f"/api/jobs/{queued['uuid']}/share")
        assert refused.status_code == 409
        assert re.search(r"no finished output", (await refused.get_json())["error"]["message"])
    missing_share = await client.delete(f"/api/jobs/{job['uuid']}/shares/{uuid.uuid4()}")
    assert missing_share.status_code == 404


def play_in_browser(chromium: Path, url: str) -> dict:  # type: ignore[type-arg]
    """Open the share page in Chromium, let the video load and seek; what it saw."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True, args=launch_args()
        )
        try:
            # The page's CSP forbids script; Playwright's probes are script, so the
            # test's own evaluations bypass it (the page itself runs none).
            page = browser.new_page(bypass_csp=True)
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_function("document.querySelector('video').readyState >= 1")
            duration = page.evaluate("document.querySelector('video').duration")
            page.evaluate("document.querySelector('video').currentTime = 0.5")
            page.wait_for_function("!document.querySelector('video').seeking")
            error = page.evaluate("document.querySelector('video').error")
            href = page.get_attribute("#download", "href")
            return {"duration": duration, "error": error, "download": href}
        finally:
            browser.close()


async def test_share_page_plays_in_a_real_browser(
    app: StinercutApp, client, live_url: str, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    chromium = require_chromium()
    job = await finished_job(app, client, media_dir, "Browser jump")
    share = await (await client.post(f"/api/jobs/{job['uuid']}/share")).get_json()
    seen = await trio.to_thread.run_sync(play_in_browser, chromium, f"{live_url}/s/{share['token']}")
    assert seen["error"] is None, seen
    assert 0.8 <= seen["duration"] <= 1.3, seen  # the 1 s clip, read through Range requests
    assert seen["download"] == f"/s/{share['token']}/download"
